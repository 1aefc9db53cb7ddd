package authrefresh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authrefresh/authrefresh/internal/dpop"
)

// Session owns one credential and is shared by every request that uses it.
//
// It is shaped like golang.org/x/sync/singleflight: a mutex guards the
// decision, at most one refresh is in flight, and everyone who needs a new
// token waits for that one result. The current token is published through an
// atomic pointer, so the fast path (a valid token in memory) takes no lock and
// does no I/O. Each published token carries two atomics of its own, so that
// exactly one request claims a refresh-ahead and a Transport can record that
// the server accepted the token, both without the mutex. A second mutex only
// keeps hook calls from overlapping.
//
// The stages of one refresh, in the order they run: a caller that needs a
// new token obtains it (obtain); under the mutex it decides (decide) to use
// the current token, to wait for the refresh in flight, to start one, or to
// fail fast during a backoff; the refresh flies in a goroutine of its own
// (fly), renews the token against the store and the Refresher (renew), and
// settles the outcome (settle): publish, run the hooks, release the waiters.
type Session struct {
	store     Store
	refresher Refresher
	prover    Prover      // the refresher, if it signs DPoP proofs
	nonces    dpop.Nonces // the DPoP nonces each resource server gave, for every Transport
	opts      Options

	current atomic.Pointer[state] // nil until loaded, and after the session ends

	mu     sync.Mutex // guards the fields below
	flight *flight    // the refresh in progress, if any
	ended  error      // ErrSessionExpired or ErrNotLoggedIn (after Logout): fail fast until a login
	dead   *Token     // the token the session ended with; a different one in the store is a new login
	lookAt time.Time  // an ended session looks in the store for a new login no sooner than this
	epoch  uint64     // bumped by Login, Logout and resume; a flight of an older epoch is discarded
	retry  retryState // backoff after transient failures, hold after repeated refusals

	hookMu sync.Mutex // keeps hook calls from overlapping
	stats  counters
}

// state is one published token with its precomputed deadlines.
type state struct {
	tok *Token
	// The deadlines are wall-clock UnixNano, deliberately not monotonic
	// readings: Linux's monotonic clock stops while the machine sleeps, so
	// after a laptop's suspend a monotonic deadline would still call an
	// expired token valid (x/oauth2 strips the monotonic reading for the
	// same reason).
	aheadAt atomic.Int64 // after this a background refresh starts; never above staleAt
	staleAt int64        // after this the token is treated as expired; MaxInt64: unknown
	// refusedAt is when a refresh caused by a refusal produced this token;
	// zero otherwise. See retryState.hold.
	refusedAt time.Time
	accepted  atomic.Bool // the server answered this token with something other than a refusal
	unsaved   error       // why this token is not in the store, if it is not
}

func (st *state) token() *Token {
	if st == nil {
		return nil
	}
	return st.tok
}

func (st *state) stale(now time.Time) bool { return now.UnixNano() >= st.staleAt }

// is reports whether tok is this state's credential.
func (st *state) is(tok *Token) bool { return tok != nil && tok.AccessToken == st.tok.AccessToken }

// unproven reports whether st replaced a refused token and has not been
// accepted by the server since.
func (st *state) unproven() bool {
	return st != nil && !st.refusedAt.IsZero() && !st.accepted.Load()
}

// flight is one refresh; done is closed when st and err are final.
type flight struct {
	done    chan struct{}
	epoch   uint64
	from    *state // the state being replaced; nil: none in memory, load from the store
	refusal bool   // started because the server refused from's token
	st      *state
	err     error
}

// NewSession returns a Session that keeps its token in store (nil means a
// new MemoryStore) and renews it with refresher. The store may already hold a
// token (from an earlier process); otherwise call Login.
func NewSession(store Store, refresher Refresher, opts Options) *Session {
	prover, _ := refresher.(Prover)
	return &Session{store: cmp.Or[Store](store, &MemoryStore{}), refresher: refresher, prover: prover, opts: opts.withDefaults()}
}

func (s *Session) now() time.Time { return s.opts.Clock() }

// newState publishes tok, dated by the Session's clock. fresh says tok was
// just received: if our clock already calls it expired, the clocks disagree,
// and the expiry is ignored rather than refreshing on every request.
func (s *Session) newState(tok *Token, now time.Time, fresh bool) *state {
	st := &state{tok: tok, staleAt: math.MaxInt64}
	st.aheadAt.Store(math.MaxInt64)
	stale := tok.staleAt()
	if stale.IsZero() {
		return st
	}
	if fresh && !now.Before(stale) {
		s.opts.Logger.Warn("authrefresh: new token is already expired by this machine's clock; using it until refused", "token", tok)
		return st
	}
	st.staleAt = stale.UnixNano()
	ahead := st.staleAt
	if r := s.opts.RefreshAhead; r > 0 && r < 1 {
		if j := min(s.opts.RefreshJitter, r); j > 0 {
			r -= j * rand.Float64()
		}
		life := tok.Expiry.Sub(tok.IssuedAt)
		ahead = min(ahead, tok.IssuedAt.Add(time.Duration(float64(life)*r)).UnixNano())
	}
	st.aheadAt.Store(ahead)
	return st
}

// Token returns a usable access token. If the current one is nearly expired it
// starts a refresh in the background and returns the still-valid one; only an
// expired (or not yet loaded) token makes the caller wait. The returned Token is
// shared: do not modify it.
//
// After the session ended (ErrSessionExpired, or ErrNotLoggedIn after
// Logout), calls fail fast without network traffic; at most once per
// Options.MinBackoff one of them reads the store, and if another process
// saved a new login there (a token other than the one the session ended
// with), the session resumes with it: a long-running sidecar heals after
// "authrefresh login" without a restart.
func (s *Session) Token(ctx context.Context) (*Token, error) {
	if st := s.current.Load(); st != nil {
		now := s.now().UnixNano()
		if now < st.aheadAt.Load() {
			return st.tok, nil // the fast path: one atomic load, one clock read
		}
		if now < st.staleAt {
			s.refreshAhead(ctx, st)
			return st.tok, nil
		}
	}
	st, err := s.obtain(ctx, needToken, nil)
	return st.token(), err
}

// Refused reports that the server refused tok and returns the token to
// retry with. If tok is no longer the current token (someone already
// refreshed), the current one is returned without a refresh; otherwise
// Refused joins or starts the one refresh in flight and waits for it.
//
// The errors are those of Token, and a *NotReplayedError wrapping
// ErrFreshTokenRefused when tok was itself issued moments ago in place of
// a refused token and never accepted since (see Options.MinBackoff).
// Integrations other than Transport (a gRPC interceptor, a TokenSource
// wrapper) call Refused on a refusal, and Accepted on any other answer.
// A nil tok is Refresh.
func (s *Session) Refused(ctx context.Context, tok *Token) (*Token, error) {
	if tok == nil {
		return s.Refresh(ctx)
	}
	s.stats.refusals.Add(1)
	st, err := s.obtain(ctx, tokenRefused, tok)
	return st.token(), err
}

// Refresh renews the token now, whatever its age, as its Refresher
// would: it joins the refresh in flight or starts one, under the store's
// lock, where a token another process saved meanwhile is adopted instead.
// The errors are those of Token.
func (s *Session) Refresh(ctx context.Context) (*Token, error) {
	st, err := s.obtain(ctx, forceRefresh, nil)
	return st.token(), err
}

// Accepted records that the server accepted tok (answered with anything but a
// refusal). It is cheap: a Transport calls it after every response. Only a
// token never accepted can hold back refresh after refusal (see Refresh).
func (s *Session) Accepted(tok *Token) {
	if st := s.current.Load(); st != nil && st.tok == tok && !st.accepted.Load() {
		st.accepted.Store(true)
	}
}

// StoreError reports why the current token is not in the store (see
// Options.OnStoreError), or nil when it is.
func (s *Session) StoreError() error {
	if st := s.current.Load(); st != nil {
		return st.unsaved
	}
	return nil
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
	var f *flight
	if s.flight == nil && s.ended == nil && s.current.Load() == st {
		f = s.begin(st, false)
	}
	s.mu.Unlock()
	if f != nil {
		s.stats.refreshAheadStarts.Add(1)
		go s.fly(ctx, f)
	}
}

// why says what a caller on the slow path needs.
type why int

const (
	needToken    why = iota // any usable token: Token
	tokenRefused            // a replacement for a token the server refused: Refused
	forceRefresh            // a new token whatever the current one: Refresh
)

// outcome names what a caller on the slow path does next.
type outcome int

const (
	useCurrent  outcome = iota // take the current token, st
	joinFlight                 // wait for the refresh in flight, flight
	leadFlight                 // launch flight, just begun, then wait for it
	waitBackoff                // the backoff ends within pause: wait once, then decide again; else fail with err
	fail                       // fail with err
	lookInStore                // the session ended: fail with err unless the store holds a new login (epoch)
)

// decision is an outcome and what it needs.
type decision struct {
	outcome outcome
	st      *state
	flight  *flight
	pause   time.Duration
	err     error
	epoch   uint64
}

// obtain is the slow path of Token and Refresh: decide under the lock, then
// act outside it. It waits out a short backoff at most once (in real time),
// then decides again, for the last time.
func (s *Session) obtain(ctx context.Context, need why, refused *Token) (*state, error) {
	st, pause, err := s.act(ctx, s.decide(ctx, need, refused))
	if pause <= 0 {
		return st, err
	}
	if err := s.sleep(ctx, pause); err != nil {
		return nil, err
	}
	d := s.decide(ctx, need, refused)
	d.pause = 0 // one wait only
	st, _, err = s.act(ctx, d)
	return st, err
}

// act carries out d. A positive pause says the backoff of a failed refresh
// ends that soon: the caller may wait for it and decide again.
func (s *Session) act(ctx context.Context, d decision) (st *state, pause time.Duration, err error) {
	switch d.outcome {
	case useCurrent:
		return d.st, 0, nil
	case leadFlight:
		go s.fly(ctx, d.flight)
		fallthrough
	case joinFlight:
		st, err := s.wait(ctx, d.flight)
		if errors.Is(err, ErrRefreshTransient) {
			pause = s.pause(ctx) // the refresh failed: the next one may come soon
		}
		return st, pause, err
	case waitBackoff:
		if d.pause > 0 {
			return nil, d.pause, d.err
		}
		s.stats.backoffRefusals.Add(1)
	case lookInStore:
		if st := s.resume(ctx, d.epoch); st != nil {
			return st, 0, nil
		}
	case fail:
		if errors.Is(d.err, ErrFreshTokenRefused) {
			s.opts.Logger.Warn("authrefresh: fresh token refused again; not refreshing in a loop")
		}
	}
	return nil, 0, d.err
}

// decide chooses, under the lock, what a caller that needs a token does.
func (s *Session) decide(ctx context.Context, need why, refused *Token) decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	cur := s.current.Load()
	switch {
	case s.ended != nil && !now.Before(s.lookAt):
		s.lookAt = now.Add(s.opts.MinBackoff)
		return decision{outcome: lookInStore, err: s.ended, epoch: s.epoch}
	case s.ended != nil:
		return decision{outcome: fail, err: s.ended}
	case cur != nil && need != forceRefresh && !cur.stale(now) && !cur.is(refused):
		if need == tokenRefused {
			s.stats.staleRefusals.Add(1)
		}
		return decision{outcome: useCurrent, st: cur}
	case s.flight != nil:
		return decision{outcome: joinFlight, flight: s.flight}
	case now.Before(s.retry.until):
		return decision{outcome: waitBackoff, pause: s.pauseLocked(ctx, now), err: &backoffError{last: s.retry.last, until: s.retry.until}}
	case need == tokenRefused && cur.unproven() && now.Sub(cur.refusedAt) < s.retry.hold(&s.opts):
		return decision{outcome: fail, err: &NotReplayedError{Err: ErrFreshTokenRefused}}
	}
	return decision{outcome: leadFlight, flight: s.begin(cur, need == tokenRefused)}
}

// begin registers a new flight replacing from. s.mu is held.
func (s *Session) begin(from *state, refusal bool) *flight {
	s.flight = &flight{done: make(chan struct{}), epoch: s.epoch, from: from, refusal: refusal}
	return s.flight
}

// pause is how long a caller may wait for the running backoff to end: what
// remains of it, if that is within Options.BackoffWait and before ctx's
// deadline; else 0.
func (s *Session) pause(ctx context.Context) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pauseLocked(ctx, s.now())
}

func (s *Session) pauseLocked(ctx context.Context, now time.Time) time.Duration {
	remaining := s.retry.until.Sub(now)
	if remaining <= 0 || remaining > s.opts.BackoffWait {
		return 0
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= remaining {
		return 0
	}
	return remaining
}

// sleep waits d, or until ctx ends.
func (s *Session) sleep(ctx context.Context, d time.Duration) error {
	began := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	defer func() { s.stats.noteWait(time.Since(began)) }()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return cancelled(ctx)
	}
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
		return nil, cancelled(ctx)
	}
}

// fly runs flight f to its end. The refresh keeps the leader's context values
// (trace IDs) but not its cancellation: one caller giving up must not fail it
// for the others.
func (s *Session) fly(ctx context.Context, f *flight) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RefreshTimeout)
	defer cancel()
	r, err := s.renew(rctx, f.from.token())
	s.settle(f, r, err)
}

// renewal is what a successful renew produced.
type renewal struct {
	tok     *Token
	adopted bool  // taken from the store, not refreshed
	unsaved error // the refreshed token could not be saved
}

// settle ends flight f with the outcome of its renew, in three steps of
// one lock section each at most: record the outcome as the Session's state,
// announce it (log, hooks), land the flight (release its waiters).
func (s *Session) settle(f *flight, r renewal, err error) {
	ev := s.record(f, r, err)
	s.announce(f, r, ev)
	s.land(f)
}

// event is what record changed, for announce.
type event int

const (
	noChange event = iota // a failure that keeps the session, or an overtaken flight
	renewed               // a new token is current
	expired               // the session ended
)

// record makes the outcome of f the Session's state, under the lock, and
// sets f.st and f.err for its waiters.
func (s *Session) record(f *flight, r renewal, err error) event {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	switch {
	case f.epoch != s.epoch: // Login or Logout overtook this refresh: theirs stands.
		f.st, f.err = s.current.Load(), s.ended
		if f.st == nil && f.err == nil {
			f.err = ErrNotLoggedIn
		}
		return noChange
	case err == nil:
		f.st = s.newState(r.tok, now, !r.adopted)
		f.st.unsaved = r.unsaved
		if f.refusal && !r.adopted {
			f.st.refusedAt = now
			s.retry.refusalRenewed(f.from)
		}
		s.current.Store(f.st)
		s.retry.succeeded()
		if r.adopted {
			s.stats.adopted.Add(1)
		} else {
			s.stats.refreshes.Add(1)
		}
		return renewed
	case errors.Is(err, ErrSessionExpired):
		s.ended, f.err = err, err
		s.dead, s.lookAt = deadToken(err, f.from.token()), now.Add(s.opts.MinBackoff)
		s.current.Store(nil)
		s.stats.rejections.Add(1)
		return expired
	case errors.Is(err, ErrNotLoggedIn):
		f.err = err
		return noChange
	}
	re := asRefreshError(err)
	until := s.retry.failed(re, now, &s.opts)
	if f.from != nil { // the next refresh-ahead try waits for the backoff too
		f.from.aheadAt.Store(min(until.UnixNano(), f.from.staleAt))
	}
	f.err = re
	if re.Kind != RefreshStoreUnreadable { // counted as a store error
		s.stats.transientFailures.Add(1)
	}
	return noChange
}

// announce logs what record did and runs the hooks, outside the lock.
func (s *Session) announce(f *flight, r renewal, ev event) {
	old := f.from.token()
	switch {
	case ev == renewed:
		s.opts.Logger.Debug("authrefresh: token renewed", "token", r.tok, "adopted", r.adopted)
		s.notify(old, r.tok, nil)
		if r.unsaved != nil && s.opts.OnStoreError != nil {
			s.hookMu.Lock()
			s.opts.OnStoreError(r.unsaved)
			s.hookMu.Unlock()
		}
	case ev == expired:
		s.opts.Logger.Info("authrefresh: session expired", "error", f.err)
		s.notify(old, nil, f.err)
	case f.err != nil:
		s.opts.Logger.Debug("authrefresh: refresh failed", "error", f.err)
	}
}

// land ends f and releases its waiters. It comes only after the hooks, so
// that the next refresh's hooks cannot overtake them.
func (s *Session) land(f *flight) {
	s.mu.Lock()
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}

// notify runs the hooks for a change from old to new (nil: logged out, or
// ended because of expired), one call at a time.
func (s *Session) notify(old, new *Token, expired error) {
	onChange, onExpired := s.opts.OnTokenChange, s.opts.OnSessionExpired
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	if onChange != nil && (old != nil || new != nil) {
		onChange(old, new)
	}
	if expired != nil && onExpired != nil {
		onExpired(expired)
	}
}

// Login starts a session with tok (for example the answer of a login
// endpoint): it is dated by the Session's clock, saved to the store, replaces
// any current token, and ends a previous expiry.
func (s *Session) Login(ctx context.Context, tok *Token) error {
	if tok == nil || tok.AccessToken == "" {
		return errors.New("authrefresh: Login needs a token with an access token")
	}
	now := s.now()
	tok = tok.dated(now, true)
	s.noteLifetime(tok)
	if locker, ok := s.store.(Locker); ok {
		unlock, _, err := s.lock(ctx, locker, nil) // a login replaces whatever was saved: it adopts nothing
		if err != nil {
			return fmt.Errorf("authrefresh: login: %w", err)
		}
		defer unlock()
	}
	// One more than any generation it replaces, so that no Session takes
	// the tokens of the previous login for newer than this one.
	stored, _ := s.store.Load(ctx)
	tok.Generation = max(tok.Generation, stored.generation(), s.current.Load().token().generation()) + 1
	if err := s.store.Save(ctx, tok); err != nil {
		return fmt.Errorf("authrefresh: login: %w", err)
	}
	s.mu.Lock()
	old := s.current.Load().token()
	s.epoch++
	s.ended, s.dead, s.retry = nil, nil, retryState{}
	s.current.Store(s.newState(tok, now, false))
	s.mu.Unlock()
	s.notify(old, tok, nil)
	return nil
}

// Logout ends the session: the refresh token is revoked on the server if the
// Refresher is a Revoker (best effort), the store is cleared, and every later
// call fails with ErrNotLoggedIn until Login, or until another process saves
// a new login to the store (see Token). The returned error reports a
// failed revocation or store clear; the session is ended in any case.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	old := s.current.Load().token()
	s.epoch++
	s.ended = ErrNotLoggedIn
	s.current.Store(nil)
	s.mu.Unlock()

	if old == nil {
		old, _ = s.store.Load(ctx)
	}
	s.mu.Lock()
	s.dead, s.lookAt = old, s.now().Add(s.opts.MinBackoff)
	s.mu.Unlock()
	var errs []error
	if rv, ok := s.refresher.(Revoker); ok && old != nil {
		if err := rv.Revoke(ctx, old.clone()); err != nil {
			errs = append(errs, fmt.Errorf("authrefresh: revoking the refresh token: %w", err))
		}
	}
	if err := s.store.Clear(ctx); err != nil {
		errs = append(errs, fmt.Errorf("authrefresh: clearing the token store: %w", err))
	}
	s.notify(old, nil, nil)
	return errors.Join(errs...)
}

// Refreshing reports whether a refresh of s is in flight: a manager of many
// Sessions keeps such a Session rather than evict it.
func (s *Session) Refreshing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flight != nil
}

// held is the token in memory, without loading or refreshing one; nil if
// none.
func (s *Session) held() *Token { return s.current.Load().token() }

// Options returns the options s runs with, defaults filled in: its Clock
// is the one it dates tokens by.
func (s *Session) Options() Options { return s.opts }
