package authrefresh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the Session's exchange with its Store and its Refresher: what
// a refresh in flight does (renew, under the store's lock), and how an ended
// session finds a new login (resume). The decisions around it — who refreshes,
// who waits, what is published — are in session.go.

// renew produces the token that replaces old (nil: none in memory). Under the
// store's lock if it has one, it re-reads the store (another process may have
// refreshed already), calls the Refresher, and saves the result before anyone
// sees it. Its errors are ErrNotLoggedIn, a *RefreshError, or a session-expired
// error wrapping the *RefreshError that ended the session. A panicking
// Refresher or Store is a transient failure: the waiters must be released
// whatever happens.
func (s *Session) renew(ctx context.Context, old *Token) (r renewal, err error) {
	defer func() {
		if v := recover(); v != nil {
			msg := scrubString(fmt.Sprint(v), old, s.current.Load().token())
			s.opts.Logger.Error("authrefresh: panic during refresh", "panic", msg)
			r, err = renewal{}, Transient(errors.New("panic during refresh: "+msg))
		}
	}()
	if locker, ok := s.store.(Locker); ok {
		unlock, adopted, err := s.lock(ctx, locker, func() *Token { return s.newerInStore(ctx, old) })
		if err != nil {
			return renewal{}, &RefreshError{Kind: RefreshTransient, Err: fmt.Errorf("taking the store's refresh lock: %w", err), local: true}
		}
		if adopted != nil {
			return renewal{tok: adopted, adopted: true}, nil
		}
		defer unlock()
		// The refresh gets its own RefreshTimeout, whatever the wait for
		// the lock used: a refresh cancelled after the server rotated the
		// token loses the rotation.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.opts.RefreshTimeout)
		defer cancel()
	}
	stored, err := s.read(ctx, old)
	if err != nil {
		return renewal{}, err
	}
	// An empty store while we hold a token is not taken as a logout: a
	// restarted Redis without persistence looks the same. We refresh with the
	// token in memory and save the result; if the session was really ended
	// elsewhere (revoked on the server), that refresh is rejected.
	if newer := s.newerIn(stored, old); newer != nil {
		return renewal{tok: newer, adopted: true}, nil
	}
	base := s.newest(stored, old)
	if s.refresher == nil { // the stored token was all there was
		return renewal{}, &sessionExpiredError{cause: Rejected(errors.New("no Refresher configured")), dead: base}
	}
	tok, re := s.exchange(ctx, base)
	if re != nil {
		return s.refused(ctx, stored, base, re)
	}
	return s.keep(ctx, stored, s.successor(tok, base, stored))
}

// read loads the stored token under the lock, its failures classified.
func (s *Session) read(ctx context.Context, old *Token) (*Token, error) {
	stored, err := s.store.Load(ctx)
	switch {
	case errors.Is(err, ErrStoreCorrupt):
		// It will not pass by itself, and refreshing the token in memory
		// would overwrite a record that a process with the right keyring
		// may read (and may hold a newer token): say so, and wait.
		s.stats.storeErrors.Add(1)
		return nil, &RefreshError{Kind: RefreshStoreUnreadable, Err: err, local: true}
	case err != nil && old == nil:
		return nil, &RefreshError{Kind: RefreshTransient, Err: fmt.Errorf("loading the token: %w", err), local: true}
	case err != nil:
		// Under the lock, but blind: another process may have rotated the
		// token we hold, and presenting it again would trip the server's
		// reuse detection and end the session everywhere. Try again later.
		s.stats.storeErrors.Add(1)
		return nil, &RefreshError{Kind: RefreshTransient, Err: fmt.Errorf("reading the token under the refresh lock: %w", err), local: true}
	case stored == nil && old == nil:
		if _, acquires := s.refresher.(Acquirer); !acquires {
			return nil, ErrNotLoggedIn
		}
	}
	return stored, nil
}

// newest is the token to refresh with: the newest seen. A store older than
// memory was rolled back (a failover lost the last write, a snapshot was
// restored), and its refresh token was already rotated away; presenting it
// would trip the server's reuse detection and end the session everywhere.
func (s *Session) newest(stored, old *Token) *Token {
	if stored.olderThan(old) {
		s.opts.Logger.Warn("authrefresh: the store holds an older token than this process; refreshing with the newer one and repairing the store",
			"stored_generation", stored.Generation, "generation", old.Generation)
		return old
	}
	return cmp.Or(stored, old)
}

// exchange asks the Refresher for base's successor (an Acquirer for a
// first token when there is no base), through the error boundary.
func (s *Session) exchange(ctx context.Context, base *Token) (*Token, *RefreshError) {
	var tok *Token
	var err error
	switch acq, acquires := s.refresher.(Acquirer); {
	case acquires && base == nil:
		s.opts.Logger.Debug("authrefresh: acquiring a first token")
		tok, err = acq.Acquire(ctx)
	default:
		s.opts.Logger.Debug("authrefresh: refreshing", "token", base)
		tok, err = s.refresher.Refresh(ctx, base.clone())
	}
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("the Refresher returned no access token")
	}
	if err != nil {
		return nil, refreshFailure(err, base)
	}
	return tok, nil
}

// refused settles a failed exchange: a rejection ends the session, unless
// another process rotated the token while our request was in flight.
func (s *Session) refused(ctx context.Context, stored, base *Token, re *RefreshError) (renewal, error) {
	if re.Kind != RefreshRejected {
		return renewal{}, re
	}
	if newer := s.newerInStore(ctx, base); newer != nil {
		return renewal{tok: newer, adopted: true}, nil
	}
	_, _ = s.save(ctx, stored, nil)
	return renewal{}, &sessionExpiredError{cause: re, dead: base}
}

// successor is tok, just received in place of base, made whole: dated by
// the Session's clock, with what the server did not resend carried over,
// one generation above the newest it replaces.
func (s *Session) successor(tok, base, stored *Token) *Token {
	tok = tok.dated(s.now(), true)
	s.noteLifetime(tok)
	if base == nil { // a first token, acquired
		tok.Generation = stored.generation() + 1
		return tok
	}
	if tok.RefreshToken == "" { // a server that does not rotate may not resend it
		tok.RefreshToken = base.RefreshToken
		tok.RefreshExpiry = cmp.Or(tok.RefreshExpiry, base.RefreshExpiry)
	}
	tok.IDToken, tok.Scope = cmp.Or(tok.IDToken, base.IDToken), cmp.Or(tok.Scope, base.Scope)
	if tok.DPoPKey == nil { // the refresh token stays bound to the same key
		tok.DPoPKey = base.DPoPKey
	}
	tok.Generation = max(base.Generation, stored.generation()) + 1
	return tok
}

// keep saves tok in place of stored before the lock is released, trying
// again within a few seconds: released over a store that still holds the
// rotated-away token, the lock would let the next process present it.
func (s *Session) keep(ctx context.Context, stored, tok *Token) (renewal, error) {
	newer, err := s.save(ctx, stored, tok)
	for i, wait := 0, 20*time.Millisecond; err != nil && i < saveRetries && ctx.Err() == nil; i, wait = i+1, wait*2 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		newer, err = s.save(ctx, stored, tok)
	}
	if newer != nil {
		return renewal{tok: newer, adopted: true}, nil // a Session that took over our lock saved a newer token
	}
	return renewal{tok: tok, unsaved: err}, nil
}

// saveRetries is how often a refreshed token that could not be saved is
// saved again, under the lock, 20 ms after the first try and then twice as
// long each time: 2.5 s in all, what a Redis failover or a dropped
// connection takes to heal.
const saveRetries = 7

// maxLockPasses bounds how often one refresh sees the lock pass to another
// holder (ErrLockReleased) without a new token to adopt.
const maxLockPasses = 32

// lock takes the store's lock. Before each attempt it asks adopt, if set,
// for a token to adopt instead, and returns that without the lock:
// adopting needs none (in a fleet, one process refreshes and the others
// follow with one read each). When the holder releases the lock to us
// without a token to adopt (ErrLockReleased), it tries again, a bounded
// number of times.
func (s *Session) lock(ctx context.Context, locker Locker, adopt func() *Token) (unlock func(), adopted *Token, err error) {
	for pass := 0; ; pass++ {
		if adopt != nil {
			if tok := adopt(); tok != nil {
				return nil, tok, nil
			}
		}
		began := time.Now()
		unlock, err := locker.Lock(ctx)
		s.stats.noteLockWait(time.Since(began))
		if errors.Is(err, ErrLockReleased) && pass < maxLockPasses {
			continue // the holder is done: read what it saved
		}
		return unlock, nil, err
	}
}

// newerInStore is the stored token if it is newer than old (see newerIn);
// nil when the store cannot say.
func (s *Session) newerInStore(ctx context.Context, old *Token) *Token {
	stored, err := s.store.Load(ctx)
	if err != nil {
		return nil
	}
	return s.newerIn(stored, old)
}

// newerIn returns stored, dated, if it is another credential than old, not
// of an older generation, and still usable: another Session saved it, so
// there is nothing to refresh.
func (s *Session) newerIn(stored, old *Token) *Token {
	if stored == nil || stored.SameCredential(old) || stored.olderThan(old) {
		return nil
	}
	now := s.now()
	if d := stored.dated(now, false); d.Expiry.IsZero() || now.Before(d.staleAt()) {
		return d
	}
	return nil
}

// refreshFailure is the error boundary of a Refresher: its error as a
// *RefreshError (a plain error is transient), without the tokens it may
// quote. The Refresher's own error value is never modified.
func refreshFailure(err error, toks ...*Token) *RefreshError {
	re := *asRefreshError(err)
	re.Err = scrubSecrets(re.Err, toks...)
	re.Description = scrubString(re.Description, toks...)
	if re.Kind == RefreshCancelled {
		re.Kind = RefreshTransient // the refresh's own context is no caller's
	}
	return &re
}

// save stores tok in place of old (compare-and-swap when the store can; a
// nil tok clears). If the swap finds that another Session saved a newer token
// meanwhile, save returns it. A write error is logged and counted, and
// returned for the caller to retry or report: the new token is valid and the
// waiting requests should have it.
func (s *Session) save(ctx context.Context, old, tok *Token) (newer *Token, err error) {
	swapped := true
	switch sw, ok := s.store.(Swapper); {
	case ok:
		swapped, err = sw.CompareAndSwap(ctx, old, tok)
	case tok == nil:
		err = s.store.Clear(ctx)
	default:
		err = s.store.Save(ctx, tok)
	}
	if err != nil {
		s.stats.storeErrors.Add(1)
		s.opts.Logger.Warn("authrefresh: cannot save the token", "error", err)
		return nil, err
	}
	if swapped {
		return nil, nil
	}
	if again, err := s.store.Load(ctx); err == nil && again != nil && !again.olderThan(tok) {
		return again.dated(s.now(), false), nil
	}
	return nil, nil
}

// resume looks in the store for a login newer than the end of the session
// (another process or the CLI logged in again, a sidecar's operator ran
// "authrefresh login") and, if it finds one, resumes the session with it. It
// runs at most once per Options.MinBackoff while the session is ended, so a
// dead session costs the store one read per interval, not one per request.
func (s *Session) resume(ctx context.Context, epoch uint64) *state {
	tok, err := s.store.Load(ctx)
	if err != nil || tok == nil {
		return nil
	}
	s.mu.Lock()
	if s.epoch != epoch || s.ended == nil || tok.SameCredential(s.dead) {
		s.mu.Unlock()
		return nil // someone logged in meanwhile (the next call sees it), or nothing new
	}
	now := s.now()
	tok = tok.dated(now, false)
	st := s.newState(tok, now, false)
	s.epoch++
	s.ended, s.dead, s.retry = nil, nil, retryState{}
	s.current.Store(st)
	s.mu.Unlock()
	s.stats.resumed.Add(1)
	s.opts.Logger.Info("authrefresh: session resumed with a new login found in the store", "token", tok)
	s.notify(nil, tok, nil)
	return st
}
