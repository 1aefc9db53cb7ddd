package keyed

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

	"github.com/authrefresh/authrefresh"
)

// Manager holds a Session per key — a user of your service, a customer's
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
type Manager struct {
	// New describes the Session of key: its Store (namespaced by the key:
	// see filestore.KeyFileName, and redisstore.New with the key as the session name),
	// its Refresher and its Options. It is called when a key is first used,
	// and again after an eviction. Required.
	New func(key string) (Spec, error)
	// MaxIdle evicts a key unused for this long. 0 means 15 minutes;
	// negative means never.
	MaxIdle time.Duration
	// MaxLive bounds the live Manager: past it, idle ones are evicted,
	// least recently used first. 0 means DefaultMaxLive; negative means no
	// bound (for keys you trust: each live key holds about 1.2 KB).
	MaxLive int
	// OnTokenChange and OnSessionExpired are the keyed forms of the Options
	// hooks, called after the spec's own.
	OnTokenChange    func(key string, old, new *authrefresh.Token)
	OnSessionExpired func(key string, err error)
	// Logger receives a debug record for each sweep that evicted keys: how
	// many, and how many stay live. nil means none.
	Logger *slog.Logger
	// Clock is the eviction clock; nil means time.Now.
	Clock func() time.Time

	// Base, Origins and RetryStatuses configure each key's Transport when
	// Manager is used as an http.RoundTripper (see RoundTrip).
	Base          http.RoundTripper
	Origins       []string
	RetryStatuses []int

	keys      sync.Map // string → *keyed: lock-free lookups of live keys
	evicted   sync.Map // string → weak.Pointer[Session]: evicted keys' Manager, while something uses them
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

// DefaultMaxLive is the bound on live keys when Manager.MaxLive is 0:
// about 120 MB of live Manager at ~1.2 KB each. Keys come from outside
// (user ids, session cookies); an unbounded number of them is memory anyone
// who can mint keys can take.
const DefaultMaxLive = 100_000

// Spec is what a Session is made of.
type Spec struct {
	Store     authrefresh.Store
	Refresher authrefresh.Refresher
	Options   authrefresh.Options
}

// keyed is one live key. Its use is recorded as a flag (set on the lookup
// path only when clear, so it costs no write and no clock read), which each
// eviction sweep turns into the time it last saw the key used.
type keyed struct {
	key       string
	session   *authrefresh.Session
	transport *authrefresh.Transport // the key's own: its header cache holds only its token
	used      atomic.Bool            // a Get since the last sweep
	holds     atomic.Int32           // keep-alive passes using it; -1 once removed
	seen      int64                  // UnixNano of the last sweep that found it used (or its creation); sweeps only
	// buried is set when its Session was buried before (a revived key):
	// the cleanup that forgets it is registered already.
	buried bool
}

func (k *keyed) touch() {
	if !k.used.Load() {
		k.used.Store(true)
	}
}

func (m *Manager) now() time.Time {
	if m.Clock != nil {
		return m.Clock()
	}
	return time.Now()
}

func (m *Manager) maxLive() int64 {
	switch {
	case m.MaxLive == 0:
		return DefaultMaxLive
	case m.MaxLive < 0:
		return math.MaxInt64
	}
	return int64(m.MaxLive)
}

// lock is key's lock: a key's entry is created, taken back or removed
// under it, so that two Manager of one key never coexist.
func (m *Manager) lock(key string) *sync.Mutex {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &m.locks[h%uint32(len(m.locks))]
}

func (m *Manager) get(key string) (*keyed, error) {
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
func (m *Manager) hold(key string) (k *keyed, release func(), err error) {
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
func (m *Manager) create(key string, use bool) (*keyed, error) {
	if key == "" {
		return nil, ErrNoKey
	}
	if m.New == nil {
		return nil, errors.New("authrefresh: Manager.New is not set")
	}
	mu := m.lock(key)
	var made *authrefresh.Session
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
		s, buried := made, false
		if v, ok := m.evicted.LoadAndDelete(key); ok {
			if back := v.(weak.Pointer[authrefresh.Session]).Value(); back != nil {
				s, buried = back, true
			}
		}
		if s != nil {
			k := m.entry(key, s, use)
			k.buried = buried
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
		made = authrefresh.NewSession(spec.Store, spec.Refresher, m.keyedOptions(key, spec.Options))
	}
}

// bury remembers the Session of an evicted key weakly, for the key's next
// use while anything still uses it; once it is collected, a cleanup
// forgets it. The weak pointer and the cleanup are made at the first
// eviction, not for every live key, and once per Session: a revived
// Session's cleanup is registered already (k.buried).
func (m *Manager) bury(k *keyed) {
	key, p := k.key, weak.Make(k.session)
	m.evicted.Store(key, p)
	if !k.buried {
		evicted := &m.evicted
		runtime.AddCleanup(k.session, func(p weak.Pointer[authrefresh.Session]) { evicted.CompareAndDelete(key, p) }, p)
	}
}

// entry is a new live entry for key's Session s.
func (m *Manager) entry(key string, s *authrefresh.Session, use bool) *keyed {
	k := &keyed{key: key, session: s, transport: &authrefresh.Transport{Session: s, Base: m.Base, Origins: m.Origins, RetryStatuses: m.RetryStatuses}}
	if use {
		k.seen = m.now().UnixNano()
	} else {
		k.holds.Store(1)
	}
	return k
}

// Get returns key's Session, creating it (from New) on first use.
func (m *Manager) Get(key string) (*authrefresh.Session, error) {
	k, err := m.get(key)
	if err != nil {
		return nil, err
	}
	return k.session, nil
}

// keyKey carries a request's key.
type keyKey struct{}

// WithKey returns a context under which Manager.RoundTrip authenticates a
// request as key.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyKey{}, key)
}

// KeyFrom returns the key WithKey put in ctx, if any: for an error handler
// that sees the request a Manager refused.
func KeyFrom(ctx context.Context) (string, bool) {
	key, ok := ctx.Value(keyKey{}).(string)
	return key, ok
}

// ErrNoKey is returned by Manager for an empty key, and by
// Manager.RoundTrip for a request whose context names none (see WithKey):
// it is sent with nobody's token, never with a default one. An empty key is
// refused: the anonymous visitors of an app whose user id is "" would
// otherwise share one session.
var ErrNoKey = errors.New("authrefresh: no key: name a non-empty key (WithKey for a request)")

// RoundTrip makes Manager an http.RoundTripper for every key at once: the
// request is authenticated, refreshed and replayed by the Transport of the
// key its context names (WithKey). One http.Client serves every user.
func (m *Manager) RoundTrip(req *http.Request) (*http.Response, error) {
	key, ok := KeyFrom(req.Context())
	if !ok || key == "" {
		closeRequestBody(req)
		return nil, ErrNoKey
	}
	k, err := m.get(key)
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	return k.transport.RoundTrip(req)
}

// keyedOptions chains the keyed hooks after the spec's own.
func (m *Manager) keyedOptions(key string, o authrefresh.Options) authrefresh.Options {
	if m.OnTokenChange != nil {
		own := o.OnTokenChange
		o.OnTokenChange = func(old, new *authrefresh.Token) {
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
func (m *Manager) Token(ctx context.Context, key string) (*authrefresh.Token, error) {
	s, err := m.Get(key)
	if err != nil {
		return nil, err
	}
	return s.Token(ctx)
}

// Login starts key's session with tok (see Session.Login).
func (m *Manager) Login(ctx context.Context, key string, tok *authrefresh.Token) error {
	s, err := m.Get(key)
	if err != nil {
		return err
	}
	return s.Login(ctx, tok)
}

// Logout ends key's session (see Session.Logout) and evicts the key.
func (m *Manager) Logout(ctx context.Context, key string) error {
	k, err := m.get(key)
	if err != nil {
		return err
	}
	err = k.session.Logout(ctx)
	mu := m.lock(key)
	mu.Lock()
	if m.keys.CompareAndDelete(key, k) {
		k.holds.Store(-1)
		m.bury(k)
		m.live.Add(-1)
	}
	mu.Unlock()
	return err
}

// Live is the number of live Manager.
func (m *Manager) Live() int { return int(m.live.Load()) }

// Stats returns the live Manager' counters added up (evicted keys' are
// gone with them) with Evictions, and the number of live keys.
func (m *Manager) Stats() (total authrefresh.Stats, live int) {
	m.keys.Range(func(_, v any) bool {
		total = addStats(total, v.(*keyed).session.Stats())
		live++
		return true
	})
	total.Evictions = m.evictions.Load()
	return total, live
}

// KeyStats returns key's counters, and false if the key is not live.
func (m *Manager) KeyStats(key string) (authrefresh.Stats, bool) {
	v, ok := m.keys.Load(key)
	if !ok {
		return authrefresh.Stats{}, false
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
func (m *Manager) evict() {
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
		busy := k.holds.Load() > 0 || k.session.Refreshing()
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
			if k.holds.Load() <= 0 && !k.session.Refreshing() && m.remove(k) {
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
func (m *Manager) remove(k *keyed) bool {
	mu := m.lock(k.key)
	mu.Lock()
	defer mu.Unlock()
	if !k.holds.CompareAndSwap(0, -1) {
		return false
	}
	if !m.keys.CompareAndDelete(k.key, k) {
		return false
	}
	m.bury(k)
	m.live.Add(-1)
	m.evictions.Add(1)
	return true
}

// sweepEvery is how often the timer sweeps while keys are live: often
// enough that a key leaves within a quarter of MaxIdle of its idle time, at
// most once a second and at least once a minute.
func (m *Manager) sweepEvery() time.Duration {
	d := m.MaxIdle
	if d <= 0 {
		d = 15 * time.Minute
	}
	return min(max(d/4, time.Second), time.Minute)
}

// armSweep schedules a timed sweep unless one is scheduled. The sweep
// schedules the next while keys are live: eviction goes on when traffic
// stops, with one timer and no goroutine waiting.
func (m *Manager) armSweep() {
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

// addStats sums two Stats (MaxWait is the larger).
func addStats(a, b authrefresh.Stats) authrefresh.Stats {
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

// closeRequestBody closes the body of a request that is not sent, as a
// RoundTripper must.
func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
