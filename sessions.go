package authrefresh

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Sessions holds a Session per key — a user of your service, a customer's
// connection, a browser session — created on demand, for servers that call
// APIs on behalf of many users. Each key gets everything a Session gives (one
// refresh in flight, refresh-ahead, replay after a refusal, a clean end), and
// nothing of another key's: a key has its own Session, hence its own store,
// flight, cached token and Authorization header, so one user's token can only
// ever be attached to that user's requests. Refreshes of different keys run in
// parallel; the lookup takes no lock at all (a sync.Map), nor does a refresh
// hold any lock another key needs.
//
// A key has at most one Session in the process, whatever its store: an
// evicted key's Session is remembered weakly, and while anything still uses
// it (a caller between lookup and refresh, a request in flight, a *Session
// kept from Get) the key's next use takes it back instead of making a second
// one that would present the same refresh token.
//
// Idle keys are evicted (their tokens stay in their stores, and the next Get
// loads them again), never while a refresh is in flight: by a sweep as keys
// are added, and by a timer while any key is live (one timer, not one per
// key). Set the fields before first use.
type Sessions struct {
	// New describes the Session of key: its Store (namespaced by the key:
	// see filestore.KeyFileName, and redisstore.New with the key as the session name),
	// its Refresher and its Options. It is called when a key is first used,
	// and again after an eviction. Required.
	New func(key string) (SessionSpec, error)
	// MaxIdle evicts a key unused for this long. 0 means 15 minutes;
	// negative means never.
	MaxIdle time.Duration
	// MaxLive bounds the live Sessions: past it, idle ones are evicted,
	// least recently used first. 0 means DefaultMaxLive; negative means no
	// bound (for keys you trust: each live key holds about 1.2 KB).
	MaxLive int
	// OnTokenChange and OnSessionExpired are the keyed forms of the Options
	// hooks, called after the spec's own.
	OnTokenChange    func(key string, old, new *Token)
	OnSessionExpired func(key string, err error)
	// Logger receives a debug record for each sweep that evicted keys: how
	// many, and how many stay live. nil means none.
	Logger *slog.Logger
	// Clock is the eviction clock; nil means time.Now.
	Clock func() time.Time

	// Base, Origins and RetryStatuses configure each key's Transport when
	// Sessions is used as an http.RoundTripper (see RoundTrip).
	Base          http.RoundTripper
	Origins       []string
	RetryStatuses []int

	keys      sync.Map // string → *keyed: lock-free lookups of live keys
	evicted   sync.Map // string → weak.Pointer[Session]: evicted keys' Sessions, while something uses them
	locks     [64]sync.Mutex
	live      atomic.Int64
	added     atomic.Uint64
	nextSweep atomic.Uint64 // the addition count at which eviction next runs
	evictions atomic.Uint64
	sweeping  sync.Mutex
	timerMu   sync.Mutex
	timer     bool                                // a timed sweep is scheduled
	schedule  func(d time.Duration, sweep func()) // tests: instead of time.AfterFunc
}

// DefaultMaxLive is the bound on live keys when Sessions.MaxLive is 0:
// about 120 MB of live Sessions at ~1.2 KB each. Keys come from outside
// (user ids, session cookies); an unbounded number of them is memory anyone
// who can mint keys can take.
const DefaultMaxLive = 100_000

// SessionSpec is what a Session is made of.
type SessionSpec struct {
	Store     Store
	Refresher Refresher
	Options   Options
}

// keyed is one live key. Its use is recorded as a flag (set on the lookup
// path only when clear, so it costs no write and no clock read), which each
// eviction sweep turns into the time it last saw the key used.
type keyed struct {
	key       string
	session   *Session
	transport *Transport   // the key's own: its header cache holds only its token
	used      atomic.Bool  // a Get since the last sweep
	holds     atomic.Int32 // keep-alive passes using it; -1 once removed
	seen      int64        // UnixNano of the last sweep that found it used (or its creation); sweeps only
}

func (k *keyed) touch() {
	if !k.used.Load() {
		k.used.Store(true)
	}
}

func (m *Sessions) now() time.Time {
	if m.Clock != nil {
		return m.Clock()
	}
	return time.Now()
}

func (m *Sessions) maxLive() int64 {
	switch {
	case m.MaxLive == 0:
		return DefaultMaxLive
	case m.MaxLive < 0:
		return math.MaxInt64
	}
	return int64(m.MaxLive)
}

// lock is key's lock: a key's entry is created, taken back or removed
// under it, so that two Sessions of one key never coexist.
func (m *Sessions) lock(key string) *sync.Mutex {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &m.locks[h%uint32(len(m.locks))]
}

func (m *Sessions) get(key string) (*keyed, error) {
	if v, ok := m.keys.Load(key); ok {
		k := v.(*keyed)
		k.touch()
		return k, nil
	}
	return m.create(key, true)
}

// hold returns key's entry for a keep-alive pass, held: no sweep evicts it
// until release. The lookup is not a use: it leaves the key's idle time
// alone, and a key it creates is idle from the start, so the first sweep
// after release evicts it.
func (m *Sessions) hold(key string) (k *keyed, release func(), err error) {
	if v, ok := m.keys.Load(key); ok {
		// Held unless a sweep is removing it (holds -1): then create waits
		// for the removal and takes the Session back.
		k = v.(*keyed)
		if h := k.holds.Load(); h >= 0 && k.holds.CompareAndSwap(h, h+1) {
			return k, func() { k.holds.Add(-1) }, nil
		}
	}
	if k, err = m.create(key, false); err != nil {
		return nil, nil, err
	}
	return k, func() { k.holds.Add(-1) }, nil // created (or found) held
}

// create returns key's entry, making it if there is none: from the
// Session the key had before its eviction if anything still uses that one,
// else from New. An entry found or made for a use is touched; one not made
// for a use is returned held (see hold), idle from the start.
func (m *Sessions) create(key string, use bool) (*keyed, error) {
	if key == "" {
		return nil, ErrNoKey
	}
	if m.New == nil {
		return nil, errors.New("authrefresh: Sessions.New is not set")
	}
	mu := m.lock(key)
	var made *Session
	for {
		mu.Lock()
		if v, ok := m.keys.Load(key); ok { // another call made it meanwhile
			k := v.(*keyed)
			if use {
				k.touch()
			} else {
				k.holds.Add(1) // not -1: removal happens under mu
			}
			mu.Unlock()
			return k, nil
		}
		s := made
		if v, ok := m.evicted.LoadAndDelete(key); ok {
			if back := v.(weak.Pointer[Session]).Value(); back != nil {
				s = back
			}
		}
		if s != nil {
			k := m.entry(key, s, use)
			m.keys.Store(key, k)
			m.live.Add(1)
			mu.Unlock()
			if n := m.added.Add(1); n >= m.nextSweep.Load() || m.live.Load() > m.maxLive() {
				m.evict()
			}
			m.armSweep()
			return k, nil
		}
		mu.Unlock()
		// New may be slow (a database): outside the lock, then look again.
		spec, err := m.New(key)
		if err != nil {
			return nil, err
		}
		made = NewSession(spec.Store, spec.Refresher, m.keyedOptions(key, spec.Options))
	}
}

// bury remembers the Session of an evicted key weakly, for the key's next
// use while anything still uses it; once it is collected, a cleanup
// forgets it. The weak pointer and the cleanup are made at the first
// eviction, not for every live key.
func (m *Sessions) bury(key string, s *Session) {
	p := weak.Make(s)
	m.evicted.Store(key, p)
	if s.evicted.CompareAndSwap(false, true) {
		evicted := &m.evicted
		runtime.AddCleanup(s, func(p weak.Pointer[Session]) { evicted.CompareAndDelete(key, p) }, p)
	}
}

// entry is a new live entry for key's Session s.
func (m *Sessions) entry(key string, s *Session, use bool) *keyed {
	k := &keyed{key: key, session: s, transport: &Transport{Session: s, Base: m.Base, Origins: m.Origins, RetryStatuses: m.RetryStatuses}}
	if use {
		k.seen = m.now().UnixNano()
	} else {
		k.holds.Store(1)
	}
	return k
}

// Get returns key's Session, creating it (from New) on first use.
func (m *Sessions) Get(key string) (*Session, error) {
	k, err := m.get(key)
	if err != nil {
		return nil, err
	}
	return k.session, nil
}

// keyKey carries a request's key.
type keyKey struct{}

// WithKey returns a context under which Sessions.RoundTrip authenticates a
// request as key.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyKey{}, key)
}

// ErrNoKey is returned by Sessions for an empty key, and by
// Sessions.RoundTrip for a request whose context names none (see WithKey):
// it is sent with nobody's token, never with a default one. An empty key is
// refused: the anonymous visitors of an app whose user id is "" would
// otherwise share one session.
var ErrNoKey = errors.New("authrefresh: no key: name a non-empty key (authrefresh.WithKey for a request)")

// RoundTrip makes Sessions an http.RoundTripper for every key at once: the
// request is authenticated, refreshed and replayed by the Transport of the
// key its context names (WithKey). One http.Client serves every user.
func (m *Sessions) RoundTrip(req *http.Request) (*http.Response, error) {
	key, ok := req.Context().Value(keyKey{}).(string)
	if !ok || key == "" {
		closeBody(req)
		return nil, ErrNoKey
	}
	k, err := m.get(key)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	return k.transport.RoundTrip(req)
}

// keyedOptions chains the keyed hooks after the spec's own.
func (m *Sessions) keyedOptions(key string, o Options) Options {
	if m.OnTokenChange != nil {
		own := o.OnTokenChange
		o.OnTokenChange = func(old, new *Token) {
			if own != nil {
				own(old, new)
			}
			m.OnTokenChange(key, old, new)
		}
	}
	if m.OnSessionExpired != nil {
		own := o.OnSessionExpired
		o.OnSessionExpired = func(err error) {
			if own != nil {
				own(err)
			}
			m.OnSessionExpired(key, err)
		}
	}
	return o
}

// Token returns key's usable access token (see Session.Token).
func (m *Sessions) Token(ctx context.Context, key string) (*Token, error) {
	s, err := m.Get(key)
	if err != nil {
		return nil, err
	}
	return s.Token(ctx)
}

// Login starts key's session with tok (see Session.Login).
func (m *Sessions) Login(ctx context.Context, key string, tok *Token) error {
	s, err := m.Get(key)
	if err != nil {
		return err
	}
	return s.Login(ctx, tok)
}

// Logout ends key's session (see Session.Logout) and evicts the key.
func (m *Sessions) Logout(ctx context.Context, key string) error {
	k, err := m.get(key)
	if err != nil {
		return err
	}
	err = k.session.Logout(ctx)
	mu := m.lock(key)
	mu.Lock()
	if m.keys.CompareAndDelete(key, k) {
		k.holds.Store(-1)
		m.bury(key, k.session)
		m.live.Add(-1)
	}
	mu.Unlock()
	return err
}

// Live is the number of live Sessions.
func (m *Sessions) Live() int { return int(m.live.Load()) }

// Stats returns the live Sessions' counters added up (evicted keys' are
// gone with them) with Evictions, and the number of live keys.
func (m *Sessions) Stats() (total Stats, live int) {
	m.keys.Range(func(_, v any) bool {
		total = total.add(v.(*keyed).session.Stats())
		live++
		return true
	})
	total.Evictions = m.evictions.Load()
	return total, live
}

// KeyStats returns key's counters, and false if the key is not live.
func (m *Sessions) KeyStats(key string) (Stats, bool) {
	v, ok := m.keys.Load(key)
	if !ok {
		return Stats{}, false
	}
	return v.(*keyed).session.Stats(), true
}

// evict sweeps the live keys: a key used since the last sweep is marked
// seen now; one not seen for MaxIdle is removed; then, while there are more
// than MaxLive, the least recently seen, down to 5 % under it. Sweeps run as
// keys are added, after a number of additions that grows with the live
// keys, so their cost is constant per addition, and on a timer while keys
// are live (armSweep); a key is evicted at the first sweep after it has
// been idle for MaxIdle. A Session with a refresh in flight is never
// evicted.
func (m *Sessions) evict() {
	if !m.sweeping.TryLock() {
		return // one sweep at a time; the running one does the work
	}
	defer m.sweeping.Unlock()
	maxIdle := m.MaxIdle
	if maxIdle == 0 {
		maxIdle = 15 * time.Minute
	}
	now := m.now().UnixNano()
	maxLive := m.maxLive()
	over := m.live.Load() > maxLive
	var idle []*keyed
	removed := 0
	m.keys.Range(func(_, v any) bool {
		k := v.(*keyed)
		if k.used.Load() {
			k.used.Store(false)
			k.seen = now
		}
		busy := k.holds.Load() > 0 || k.session.refreshing()
		switch {
		case !busy && maxIdle > 0 && time.Duration(now-k.seen) >= maxIdle:
			if m.remove(k) {
				removed++
			}
		case !busy && over:
			idle = append(idle, k)
		}
		return true
	})
	m.nextSweep.Store(m.added.Load() + uint64(max(256, m.live.Load()/4)))
	if target := maxLive - maxLive/20; over && m.live.Load() > target {
		slices.SortFunc(idle, func(a, b *keyed) int { return cmp.Compare(a.seen, b.seen) })
		for _, k := range idle {
			if m.live.Load() <= target {
				break
			}
			if k.holds.Load() <= 0 && !k.session.refreshing() && m.remove(k) {
				removed++
			}
		}
	}
	if removed > 0 && m.Logger != nil {
		m.Logger.Debug("authrefresh: sessions: evicted keys", "evicted", removed, "live", m.live.Load())
	}
}

// remove evicts k unless a keep-alive pass holds it; its Session is
// remembered weakly, for the key's next use if anything still uses it.
func (m *Sessions) remove(k *keyed) bool {
	mu := m.lock(k.key)
	mu.Lock()
	defer mu.Unlock()
	if !k.holds.CompareAndSwap(0, -1) {
		return false
	}
	if !m.keys.CompareAndDelete(k.key, k) {
		return false
	}
	m.bury(k.key, k.session)
	m.live.Add(-1)
	m.evictions.Add(1)
	return true
}

// sweepEvery is how often the timer sweeps while keys are live: often
// enough that a key leaves within a quarter of MaxIdle of its idle time, at
// most once a second and at least once a minute.
func (m *Sessions) sweepEvery() time.Duration {
	d := m.MaxIdle
	if d <= 0 {
		d = 15 * time.Minute
	}
	return min(max(d/4, time.Second), time.Minute)
}

// armSweep schedules a timed sweep unless one is scheduled. The sweep
// schedules the next while keys are live: eviction goes on when traffic
// stops, with one timer and no goroutine waiting.
func (m *Sessions) armSweep() {
	m.timerMu.Lock()
	defer m.timerMu.Unlock()
	if m.timer {
		return
	}
	m.timer = true
	sweep := func() {
		m.evict()
		m.timerMu.Lock()
		m.timer = false
		m.timerMu.Unlock()
		if m.live.Load() > 0 {
			m.armSweep()
		}
	}
	if m.schedule != nil {
		m.schedule(m.sweepEvery(), sweep)
		return
	}
	time.AfterFunc(m.sweepEvery(), sweep)
}

// refreshing reports whether a refresh of s is in flight.
func (s *Session) refreshing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flight != nil
}

// add sums two Stats (MaxWait is the larger).
func (a Stats) add(b Stats) Stats {
	a.Refreshes += b.Refreshes
	a.Adopted += b.Adopted
	a.TransientFailures += b.TransientFailures
	a.Rejections += b.Rejections
	a.BackoffRefusals += b.BackoffRefusals
	a.StoreErrors += b.StoreErrors
	a.Refusals += b.Refusals
	a.StaleRefusals += b.StaleRefusals
	a.Waits += b.Waits
	a.WaitTime += b.WaitTime
	a.MaxWait = max(a.MaxWait, b.MaxWait)
	a.LockWaits += b.LockWaits
	a.LockWaitTime += b.LockWaitTime
	a.RefreshAheadStarts += b.RefreshAheadStarts
	a.Resumed += b.Resumed
	a.UnknownExpiry += b.UnknownExpiry
	return a
}
