package authrefresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Session. The zero value is a sensible default for every field.
type Options struct {
	// RefreshAhead is the fraction of a token's lifetime after which the next
	// request starts a refresh in the background while still using the valid
	// token. Being a fraction, it suits 1-second and 1-hour tokens alike.
	// 0 means 0.75; a negative value disables refresh-ahead (refresh only when
	// expired or refused).
	RefreshAhead float64
	// RefreshTimeout bounds one refresh, including waiting for a cross-process
	// lock. It runs detached from the callers' contexts. 0 means 30s.
	RefreshTimeout time.Duration
	// MinBackoff and MaxBackoff space out attempts after a transient failure:
	// the n-th consecutive failure waits a jittered MinBackoff·2ⁿ⁻¹, capped at
	// MaxBackoff, or the server's Retry-After if that is longer (still capped).
	// Meanwhile calls that need a new token fail fast with the last error,
	// unless the next attempt comes within BackoffWait.
	// 0 means 200ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// BackoffWait is how long a call that needs a new token waits for the
	// next attempt when a backoff is running, instead of failing at once: a
	// blip at the auth server (one 503, one dropped connection) then costs
	// the callers a short wait, not an error, while a long outage still fails
	// them fast. The call never waits past its context's deadline, and waits
	// at most once. 0 means 1s; negative means never wait.
	BackoffWait time.Duration
	// Clock returns the current time; nil means time.Now. Tests inject one.
	Clock func() time.Time
	// Logger receives debug records about refreshes and warnings about store
	// failures. Tokens are always redacted. nil means silent.
	Logger *slog.Logger
	// OnTokenChange is called after a new token has been saved to the store
	// (refresh, Login, adoption of another process's token) and after Logout
	// (new == nil), before the callers waiting for that token are released.
	// Calls never overlap. It must not call Refresh.
	OnTokenChange func(old, new *Token)
	// OnSessionExpired is called exactly once when the refresh token is
	// rejected and the session ends, before the waiting callers are released.
	// It is not called by Logout. It must not call Refresh.
	OnSessionExpired func(err error)
}

// Stats is a snapshot of a Session's counters.
type Stats struct {
	Refreshes          uint64        // successful calls to the Refresher
	Adopted            uint64        // tokens taken from the store instead of refreshing (first load, or saved by another Session)
	TransientFailures  uint64        // refreshes that failed transiently
	Rejections         uint64        // refreshes whose refresh token was rejected (session ended)
	BackoffRefusals    uint64        // calls refused fast because a backoff was running
	StoreErrors        uint64        // failed store reads/writes during refreshes
	Retries            uint64        // requests a Transport replayed after a refusal
	StaleRefusals      uint64        // refusals of an already replaced token (replayed, no refresh)
	Waits              uint64        // calls that had to wait for a refresh
	WaitTime           time.Duration // total time those calls waited
	MaxWait            time.Duration // longest single wait
	LockWaits          uint64        // refreshes that took the store's cross-process lock
	LockWaitTime       time.Duration // total time spent acquiring that lock
	RefreshAheadStarts uint64        // background refreshes started by refresh-ahead
}

// Session owns one credential and is shared by every request that uses it.
//
// It reads like singleflight: one mutex, at most one refresh in flight, and
// everyone who needs a new token waits for that one result. The current token
// is published through an atomic pointer, so the fast path (a valid token in
// memory) takes no lock and does no I/O.
type Session struct {
	store     Store
	refresher Refresher
	opts      Options
	log       *slog.Logger

	current atomic.Pointer[state] // nil until loaded, and after the session ends

	mu      sync.Mutex // guards the fields below
	flight  *flight    // the refresh in progress, if any
	ended   error      // ErrSessionExpired or ErrNotLoggedIn (after Logout): fail fast until Login
	gen     uint64     // bumped by Login/Logout; a flight of an older generation is discarded
	fails   int        // consecutive transient failures
	retryAt time.Time  // no new refresh before this, after a transient failure
	lastErr error      // the transient failure that set retryAt
	// refusalStreak counts refusal-caused refreshes in a row whose
	// predecessor was never accepted: see refusalHold.
	refusalStreak int

	hookMu sync.Mutex // keeps hook calls from overlapping

	stats counters
}

// state is one published token with its precomputed deadlines and header.
type state struct {
	tok    *Token
	header []string // {"Bearer <access>"}, shared read-only by all requests
	// The deadlines are wall-clock UnixNano, deliberately not monotonic
	// readings: Linux's monotonic clock stops while the machine sleeps, so
	// after a laptop's suspend a monotonic deadline would still call an
	// expired token valid (x/oauth2 strips the monotonic reading for the
	// same reason).
	aheadAt atomic.Int64 // UnixNano after which a background refresh starts; never above staleAt
	staleAt int64        // UnixNano after which the token is treated as expired; MaxInt64: unknown
	// refusedAt is when a refresh caused by a refusal produced this token
	// (Session clock); zero otherwise. A server that refuses every token must
	// not make each request refresh: see refusalHold.
	refusedAt time.Time
	accepted  atomic.Bool // a Transport saw a response to this token that was not a refusal
}

// markAccepted records that the server took this token at least once.
func (st *state) markAccepted() {
	if !st.accepted.Load() {
		st.accepted.Store(true)
	}
}

// refusalHold is how soon a token obtained because the server refused its
// predecessor may itself cause a refresh when it is refused before the server
// ever accepted it. Once is bad luck (the new token was revoked at once); in a
// row it means the server refuses fresh tokens (wrong audience, clock skew, a
// revoked client), and refreshing on every request would only hammer the auth
// server. So the hold grows like a backoff: MinBackoff, doubling with each
// such refresh in a row, capped at MaxBackoff; an accepted token resets it.
func (s *Session) refusalHold() time.Duration {
	if s.refusalStreak >= 30 {
		return s.opts.MaxBackoff
	}
	return min(s.opts.MinBackoff<<s.refusalStreak, s.opts.MaxBackoff)
}

// errRefusedAgain is returned when the token obtained because of a refusal is
// refused again at once.
var errRefusedAgain = errors.New("authrefresh: the server refused a token obtained moments ago because it refused the previous one; not refreshing again (check audience, scopes and clocks)")

// flight is one refresh; done is closed when st/err are final.
type flight struct {
	done    chan struct{}
	gen     uint64
	refusal bool // started because the server refused a token
	st      *state
	err     error
}

// NewSession returns a Session that keeps its token in store (nil means a
// new MemoryStore) and renews it with refresher. The store may already hold a
// token (from an earlier process); otherwise call Login.
func NewSession(store Store, refresher Refresher, opts Options) *Session {
	if store == nil {
		store = &MemoryStore{}
	}
	if opts.RefreshAhead == 0 {
		opts.RefreshAhead = 0.75
	}
	if opts.RefreshTimeout <= 0 {
		opts.RefreshTimeout = 30 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.BackoffWait == 0 {
		opts.BackoffWait = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	return &Session{store: store, refresher: refresher, opts: opts, log: log}
}

func (s *Session) now() time.Time { return s.opts.Clock() }

func currentToken(st *state) *Token {
	if st == nil {
		return nil
	}
	return st.tok
}

// newState computes the deadlines of tok. fresh says tok was just received:
// if our clock already calls it expired, the clocks disagree, and the expiry is
// ignored rather than refreshing on every request.
func (s *Session) newState(tok *Token, now time.Time, fresh bool) *state {
	st := &state{tok: tok, header: []string{tok.AuthorizationHeader()}, staleAt: math.MaxInt64}
	st.aheadAt.Store(math.MaxInt64)
	if tok.Expiry.IsZero() {
		return st
	}
	life := tok.Expiry.Sub(tok.IssuedAt)
	stale := tok.Expiry.Add(-min(life/20, 5*time.Second))
	if fresh && !now.Before(stale) {
		s.log.Warn("authrefresh: new token is already expired by this machine's clock; using it until refused", "token", tok)
		return st
	}
	st.staleAt = stale.UnixNano()
	st.aheadAt.Store(st.staleAt)
	if s.opts.RefreshAhead > 0 && s.opts.RefreshAhead < 1 && life > 0 {
		st.aheadAt.Store(min(st.staleAt, tok.IssuedAt.Add(time.Duration(float64(life)*s.opts.RefreshAhead)).UnixNano()))
	}
	return st
}

// Token returns a usable access token. If the current one is nearly expired it
// starts a refresh in the background and returns the still-valid one; only an
// expired (or not yet loaded) token makes the caller wait. The returned Token is
// shared: do not modify it.
func (s *Session) Token(ctx context.Context) (*Token, error) {
	st, err := s.active(ctx)
	if err != nil {
		return nil, err
	}
	return st.tok, nil
}

// active is Token for the Transport: the state carries the ready-made header.
func (s *Session) active(ctx context.Context) (*state, error) {
	if st := s.current.Load(); st != nil {
		now := s.now().UnixNano()
		if now < st.aheadAt.Load() {
			return st, nil // the fast path: one atomic load, one clock read
		}
		if now < st.staleAt {
			s.refreshAhead(ctx, st)
			return st, nil
		}
	}
	return s.obtain(ctx, nil, false)
}

// refreshAhead starts one background refresh for st. The compare-and-swap on
// aheadAt lets exactly one request in; the others carry on with st.
func (s *Session) refreshAhead(ctx context.Context, st *state) {
	// Claiming moves aheadAt to staleAt: the others stay on the fast path
	// until the token is really stale, and then wait for this refresh.
	at := st.aheadAt.Load()
	if at >= st.staleAt || !st.aheadAt.CompareAndSwap(at, st.staleAt) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight == nil && s.ended == nil && s.current.Load() == st {
		s.stats.refreshAheadStarts.Add(1)
		s.start(ctx, st)
	}
}

// Refresh is called after the server refused rejected. If rejected is no
// longer the current token (someone already refreshed), the current one is
// returned without a refresh; otherwise Refresh joins or starts the one
// refresh in flight and waits for it. A nil rejected forces a refresh.
func (s *Session) Refresh(ctx context.Context, rejected *Token) (*Token, error) {
	st, err := s.obtain(ctx, rejected, rejected == nil)
	if err != nil {
		return nil, err
	}
	return st.tok, nil
}

// obtain is the slow path: return the current token if it is usable and not
// the refused one, else wait for the single refresh. During a backoff it
// waits (once, in real time) for the next attempt if that comes within
// Options.BackoffWait and before ctx ends, else it fails fast.
func (s *Session) obtain(ctx context.Context, refused *Token, force bool) (*state, error) {
	st, backoff, err := s.obtainOnce(ctx, refused, force, true)
	if backoff <= 0 {
		return st, err
	}
	began := time.Now()
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		s.stats.noteWait(time.Since(began))
		return nil, fmt.Errorf("authrefresh: stopped waiting for the token refresh: %w", context.Cause(ctx))
	}
	s.stats.noteWait(time.Since(began))
	st, _, err = s.obtainOnce(ctx, refused, force, false)
	return st, err
}

// obtainOnce is one pass of obtain. If a backoff is running and mayWait
// allows waiting for its end, it returns how long to wait instead.
func (s *Session) obtainOnce(ctx context.Context, refused *Token, force, mayWait bool) (*state, time.Duration, error) {
	s.mu.Lock()
	if s.ended != nil {
		err := s.ended
		s.mu.Unlock()
		return nil, 0, err
	}
	now := s.now()
	cur := s.current.Load()
	if cur != nil && !force && now.UnixNano() < cur.staleAt && (refused == nil || refused.AccessToken != cur.tok.AccessToken) {
		s.mu.Unlock()
		if refused != nil {
			s.stats.staleRefusals.Add(1)
		}
		return cur, 0, nil
	}
	f := s.flight
	if f == nil {
		if now.Before(s.retryAt) {
			if d := s.backoffWaitLocked(ctx, now); mayWait && d > 0 {
				s.mu.Unlock()
				return nil, d, nil
			}
			err := &backoffError{last: s.lastErr, until: s.retryAt}
			s.mu.Unlock()
			s.stats.backoffRefusals.Add(1)
			return nil, 0, err
		}
		if refused != nil && cur != nil && !force && !cur.refusedAt.IsZero() && !cur.accepted.Load() && now.Sub(cur.refusedAt) < s.refusalHold() {
			s.mu.Unlock()
			s.log.Warn("authrefresh: fresh token refused again; not refreshing in a loop")
			return nil, 0, errRefusedAgain
		}
		f = s.start(ctx, cur)
		f.refusal = refused != nil
	}
	s.mu.Unlock()
	st, err := s.wait(ctx, f)
	if err != nil && mayWait && ctx.Err() == nil && errors.Is(err, ErrRefreshTransient) {
		// The refresh we waited for failed: wait for the next attempt too,
		// if it comes soon enough.
		s.mu.Lock()
		d := s.backoffWaitLocked(ctx, s.now())
		s.mu.Unlock()
		if d > 0 {
			return nil, d, nil
		}
	}
	return st, 0, err
}

// backoffWaitLocked is how long a call may wait for the end of the running
// backoff: what remains of it, if that is within Options.BackoffWait and
// before ctx's deadline; else 0. s.mu is held.
func (s *Session) backoffWaitLocked(ctx context.Context, now time.Time) time.Duration {
	remaining := s.retryAt.Sub(now)
	if remaining <= 0 || remaining > s.opts.BackoffWait {
		return 0
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= remaining {
		return 0
	}
	return remaining
}

// wait blocks until f is done or ctx ends; the refresh goes on either way.
func (s *Session) wait(ctx context.Context, f *flight) (*state, error) {
	select {
	case <-f.done:
		return f.st, f.err
	default:
	}
	began := time.Now()
	defer func() { s.stats.noteWait(time.Since(began)) }()
	select {
	case <-f.done:
		return f.st, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("authrefresh: stopped waiting for the token refresh: %w", context.Cause(ctx))
	}
}

// start launches a refresh of old (nil: load from the store). s.mu is held.
func (s *Session) start(ctx context.Context, old *state) *flight {
	f := &flight{done: make(chan struct{}), gen: s.gen}
	s.flight = f
	// The refresh keeps the caller's values (trace IDs) but not its
	// cancellation: one caller giving up must not fail it for the others.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RefreshTimeout)
	go func() {
		defer cancel()
		var oldTok *Token
		if old != nil {
			oldTok = old.tok
		}
		tok, adopted, err := s.renewSafely(rctx, oldTok)
		s.finish(f, old, tok, adopted, err)
	}()
	return f
}

// renewSafely is renew, with a panicking Refresher or Store turned into a
// transient error: the waiters must be released whatever happens.
func (s *Session) renewSafely(ctx context.Context, old *Token) (tok *Token, adopted bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			msg := scrubString(fmt.Sprint(v), old, currentToken(s.current.Load()))
			s.log.Error("authrefresh: panic during refresh", "panic", msg)
			tok, adopted, err = nil, false, &RefreshError{Kind: RefreshTransient, Err: errors.New("panic during refresh: " + msg)}
		}
	}()
	return s.renew(ctx, old)
}

// renew produces the token that replaces old: under the store's lock if it has
// one, it re-reads the store (another process may have refreshed already),
// calls the Refresher, and saves the result before anyone sees it.
func (s *Session) renew(ctx context.Context, old *Token) (tok *Token, adopted bool, err error) {
	if locker, ok := s.store.(Locker); ok {
		began := time.Now()
		unlock, err := locker.Lock(ctx)
		s.stats.noteLockWait(time.Since(began))
		if err != nil {
			return nil, false, &RefreshError{Kind: RefreshTransient, Err: fmt.Errorf("taking the store's refresh lock: %w", err)}
		}
		defer unlock()
	}
	stored, err := s.store.Load(ctx)
	switch {
	case err != nil && old == nil:
		return nil, false, &RefreshError{Kind: RefreshTransient, Err: fmt.Errorf("loading the token: %w", err)}
	case err != nil:
		s.stats.storeErrors.Add(1)
		s.log.Warn("authrefresh: cannot read the token store; refreshing the token held in memory", "error", err)
	case stored == nil && old == nil:
		return nil, false, ErrNotLoggedIn
	}
	// An empty store while we hold a token is not taken as a logout: a
	// restarted Redis without persistence looks the same. We refresh with the
	// token in memory and save the result; if the session was really ended
	// elsewhere (revoked on the server), that refresh is rejected.
	now := s.now()
	if stored != nil && !sameAccess(stored, old) && s.usable(stored, now) {
		return stored, true, nil
	}
	base := stored
	if base == nil {
		base = old
	}
	if s.refresher == nil { // the stored token was all there was
		return nil, false, &sessionExpiredError{cause: Rejected(errors.New("no Refresher configured"))}
	}
	s.log.Debug("authrefresh: refreshing", "token", base)
	tok, err = s.refresher.Refresh(ctx, copyToken(base))
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = &RefreshError{Kind: RefreshTransient, Err: errors.New("refresher returned no access token")}
	}
	err = scrubSecrets(err, base) // a custom Refresher may quote the token it was given
	if err != nil {
		if refreshKind(err) != RefreshRejected {
			return nil, false, err
		}
		// Before ending the session, look once more: another process may have
		// rotated the token while our request was in flight.
		if again, lerr := s.store.Load(ctx); lerr == nil && again != nil && !sameAccess(again, base) && s.usable(again, s.now()) {
			return again, true, nil
		}
		s.swap(ctx, base, nil)
		return nil, false, &sessionExpiredError{cause: err}
	}
	tok = copyToken(tok)
	if tok.RefreshToken == "" {
		tok.RefreshToken = base.RefreshToken
	}
	tok.fillFromJWT(now)
	if !s.swap(ctx, stored, tok) {
		// A newer token was saved by a Session that took over our lock.
		if again, lerr := s.store.Load(ctx); lerr == nil && again != nil {
			return again, true, nil
		}
	}
	return tok, false, nil
}

// usable reports whether a token read from the store can be used as is.
func (s *Session) usable(tok *Token, now time.Time) bool {
	if tok.Expiry.IsZero() {
		return true
	}
	life := tok.Expiry.Sub(tok.IssuedAt)
	return now.Before(tok.Expiry.Add(-min(life/20, 5*time.Second)))
}

// swap saves tok in place of old (compare-and-swap when the store can). It
// returns false only when the store holds a token other than old. A store
// write error is logged and counted, not returned: the new token is valid and
// the waiting requests should have it; the next refresh saves again.
func (s *Session) swap(ctx context.Context, old, tok *Token) bool {
	var err error
	swapped := true
	if sw, ok := s.store.(Swapper); ok {
		swapped, err = sw.CompareAndSwap(ctx, old, tok)
	} else if tok == nil {
		err = s.store.Clear(ctx)
	} else {
		err = s.store.Save(ctx, tok)
	}
	if err != nil {
		s.stats.storeErrors.Add(1)
		s.log.Warn("authrefresh: cannot save the token", "error", err)
		return true
	}
	return swapped
}

// finish publishes the outcome of f, runs the hooks, then releases the waiters.
func (s *Session) finish(f *flight, old *state, tok *Token, adopted bool, err error) {
	var oldTok *Token
	if old != nil {
		oldTok = old.tok
	}
	s.mu.Lock()
	now := s.now()
	var changed, expired bool
	switch {
	case f.gen != s.gen: // Login or Logout overtook this refresh: theirs stands.
		f.st = s.current.Load()
		if f.err = s.ended; f.st == nil && f.err == nil {
			f.err = ErrNotLoggedIn
		}
	case err == nil:
		f.st = s.newState(tok, now, !adopted)
		if f.refusal && !adopted {
			f.st.refusedAt = now
			if old != nil && !old.refusedAt.IsZero() && !old.accepted.Load() {
				s.refusalStreak++ // refused again, never accepted
			} else {
				s.refusalStreak = 0
			}
		}
		s.current.Store(f.st)
		s.fails, s.retryAt, s.lastErr = 0, time.Time{}, nil
		changed = true
		if adopted {
			s.stats.adopted.Add(1)
		} else {
			s.stats.refreshes.Add(1)
		}
	case errors.Is(err, ErrSessionExpired):
		s.ended, f.err = err, err
		s.current.Store(nil)
		expired = true
		s.stats.rejections.Add(1)
	case errors.Is(err, ErrNotLoggedIn):
		f.err = err
	default:
		s.fails++
		s.lastErr = err
		s.retryAt = now.Add(s.backoff(err))
		if old != nil { // the next refresh-ahead try waits for the backoff too
			old.aheadAt.Store(min(s.retryAt.UnixNano(), old.staleAt))
		}
		f.err = err
		s.stats.transientFailures.Add(1)
	}
	s.mu.Unlock()

	switch {
	case changed:
		s.log.Debug("authrefresh: token renewed", "token", tok, "adopted", adopted)
		s.hook(func() {
			if s.opts.OnTokenChange != nil {
				s.opts.OnTokenChange(oldTok, tok)
			}
		})
	case expired:
		s.log.Info("authrefresh: session expired", "error", err)
		s.hook(func() {
			if s.opts.OnTokenChange != nil {
				s.opts.OnTokenChange(oldTok, nil)
			}
			if s.opts.OnSessionExpired != nil {
				s.opts.OnSessionExpired(err)
			}
		})
	case f.err != nil:
		s.log.Debug("authrefresh: refresh failed", "error", f.err)
	}

	s.mu.Lock()
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}

// backoff is the jittered, capped pause after the current run of failures.
func (s *Session) backoff(err error) time.Duration {
	d := s.opts.MaxBackoff
	if shift := s.fails - 1; shift < 30 {
		d = min(s.opts.MinBackoff<<shift, s.opts.MaxBackoff)
	}
	d = d/2 + rand.N(d/2+1) // "equal jitter": never less than half, never in lockstep
	var re *RefreshError
	if errors.As(err, &re) && re.RetryAfter > d {
		d = min(re.RetryAfter, s.opts.MaxBackoff)
	}
	return d
}

func (s *Session) hook(fn func()) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	fn()
}

// Login starts a session with tok (for example the answer of a login
// endpoint): it is saved to the store, replaces any current token, and ends a
// previous expiry. A missing Expiry or IssuedAt is read from the JWT claims.
func (s *Session) Login(ctx context.Context, tok *Token) error {
	if tok == nil || tok.AccessToken == "" {
		return errors.New("authrefresh: Login needs a token with an access token")
	}
	tok = copyToken(tok)
	now := s.now()
	tok.fillFromJWT(now)
	if locker, ok := s.store.(Locker); ok {
		unlock, err := locker.Lock(ctx)
		if err != nil {
			return fmt.Errorf("authrefresh: login: %w", err)
		}
		defer unlock()
	}
	if err := s.store.Save(ctx, tok); err != nil {
		return fmt.Errorf("authrefresh: login: %w", err)
	}
	s.mu.Lock()
	var oldTok *Token
	if old := s.current.Load(); old != nil {
		oldTok = old.tok
	}
	s.gen++
	s.ended, s.fails, s.retryAt, s.lastErr = nil, 0, time.Time{}, nil
	s.current.Store(s.newState(tok, now, false))
	s.mu.Unlock()
	s.hook(func() {
		if s.opts.OnTokenChange != nil {
			s.opts.OnTokenChange(oldTok, tok)
		}
	})
	return nil
}

// Logout ends the session: the refresh token is revoked on the server if the
// Refresher is a Revoker (best effort), the store is cleared, and every later
// call fails with ErrNotLoggedIn until Login. The returned error reports a
// failed revocation or store clear; the session is ended in any case.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	var oldTok *Token
	if old := s.current.Load(); old != nil {
		oldTok = old.tok
	}
	s.gen++
	s.ended = ErrNotLoggedIn
	s.current.Store(nil)
	s.mu.Unlock()

	if oldTok == nil {
		oldTok, _ = s.store.Load(ctx)
	}
	var errs []error
	if rv, ok := s.refresher.(Revoker); ok && oldTok != nil {
		if err := rv.Revoke(ctx, copyToken(oldTok)); err != nil {
			errs = append(errs, fmt.Errorf("authrefresh: revoking the refresh token: %w", err))
		}
	}
	if err := s.store.Clear(ctx); err != nil {
		errs = append(errs, fmt.Errorf("authrefresh: clearing the token store: %w", err))
	}
	if oldTok != nil {
		s.hook(func() {
			if s.opts.OnTokenChange != nil {
				s.opts.OnTokenChange(oldTok, nil)
			}
		})
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the Session's counters.
func (s *Session) Stats() Stats { return s.stats.snapshot() }

// noteRetry is how a Transport reports into Stats.
func (s *Session) noteRetry() { s.stats.retries.Add(1) }

// counters are the atomics behind Stats.
type counters struct {
	refreshes, adopted, transientFailures, rejections, backoffRefusals atomic.Uint64
	storeErrors, retries, staleRefusals, waits, lockWaits              atomic.Uint64
	refreshAheadStarts                                                 atomic.Uint64
	waitNanos, maxWaitNanos, lockWaitNanos                             atomic.Int64
}

func (c *counters) noteWait(d time.Duration) {
	c.waits.Add(1)
	c.waitNanos.Add(int64(d))
	for {
		m := c.maxWaitNanos.Load()
		if int64(d) <= m || c.maxWaitNanos.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (c *counters) noteLockWait(d time.Duration) {
	c.lockWaits.Add(1)
	c.lockWaitNanos.Add(int64(d))
}

func (c *counters) snapshot() Stats {
	return Stats{
		Refreshes:          c.refreshes.Load(),
		Adopted:            c.adopted.Load(),
		TransientFailures:  c.transientFailures.Load(),
		Rejections:         c.rejections.Load(),
		BackoffRefusals:    c.backoffRefusals.Load(),
		StoreErrors:        c.storeErrors.Load(),
		Retries:            c.retries.Load(),
		StaleRefusals:      c.staleRefusals.Load(),
		Waits:              c.waits.Load(),
		WaitTime:           time.Duration(c.waitNanos.Load()),
		MaxWait:            time.Duration(c.maxWaitNanos.Load()),
		LockWaits:          c.lockWaits.Load(),
		LockWaitTime:       time.Duration(c.lockWaitNanos.Load()),
		RefreshAheadStarts: c.refreshAheadStarts.Load(),
	}
}

// discardHandler is slog.DiscardHandler, which needs Go 1.24.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
