package authrefresh

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
// Idle keys are evicted (their tokens stay in their stores, and the next Get
// loads them again), never while a refresh is in flight. Set the fields
// before first use.
type Sessions struct {
	// New describes the Session of key: its Store (namespaced by the key:
	// see KeyFileName, and redisstore.New with the key as the session name),
	// its Refresher and its Options. It is called when a key is first used,
	// and again after an eviction. Required.
	New func(key string) (SessionSpec, error)
	// MaxIdle evicts a key unused for this long. 0 means 15 minutes;
	// negative means never.
	MaxIdle time.Duration
	// MaxLive bounds the live Sessions: past it, adding a key evicts idle
	// ones, least recently used first among a sample. 0 means no bound.
	MaxLive int
	// OnTokenChange and OnSessionExpired are the keyed forms of the Options
	// hooks, called after the spec's own.
	OnTokenChange    func(key string, old, new *Token)
	OnSessionExpired func(key string, err error)
	// Clock is the eviction clock; nil means time.Now.
	Clock func() time.Time

	// Base, Origins and RetryStatuses configure each key's Transport when
	// Sessions is used as an http.RoundTripper (see RoundTrip).
	Base          http.RoundTripper
	Origins       []string
	RetryStatuses []int

	keys      sync.Map // string → *keyed: lock-free lookups of live keys
	live      atomic.Int64
	added     atomic.Uint64
	nextSweep atomic.Uint64 // the addition count at which eviction next runs
	sweeping  sync.Mutex
}

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
	for attempt := 0; attempt < 100; attempt++ {
		v, ok := m.keys.Load(key)
		if !ok {
			if k, err = m.create(key, false); err != nil {
				return nil, nil, err
			}
			return k, func() { k.holds.Add(-1) }, nil // created held
		}
		// Held unless a sweep removed it meanwhile (holds -1): then look again.
		k = v.(*keyed)
		if h := k.holds.Load(); h >= 0 && k.holds.CompareAndSwap(h, h+1) {
			return k, func() { k.holds.Add(-1) }, nil
		}
	}
	return nil, nil, errors.New("authrefresh: Sessions: key evicted repeatedly while being looked up")
}

// create makes key's entry, unless another call did meanwhile: one Session
// per key. An entry not created for a use is idle from the start, and
// returned held (see hold), so that the sweep it may start spares it.
func (m *Sessions) create(key string, use bool) (*keyed, error) {
	if m.New == nil {
		return nil, errors.New("authrefresh: Sessions.New is not set")
	}
	spec, err := m.New(key)
	if err != nil {
		return nil, err
	}
	s := NewSession(spec.Store, spec.Refresher, m.keyedOptions(key, spec.Options))
	k := &keyed{key: key, session: s, transport: &Transport{Session: s, Base: m.Base, Origins: m.Origins, RetryStatuses: m.RetryStatuses}}
	if use {
		k.seen = m.now().UnixNano()
	} else {
		k.holds.Store(1)
	}
	for attempt := 0; ; attempt++ {
		v, loaded := m.keys.LoadOrStore(key, k)
		if !loaded {
			break
		}
		if attempt == 100 {
			return nil, errors.New("authrefresh: Sessions: key evicted repeatedly while being looked up")
		}
		other := v.(*keyed)
		if use {
			other.touch()
			return other, nil
		}
		if h := other.holds.Load(); h >= 0 && other.holds.CompareAndSwap(h, h+1) {
			return other, nil
		}
		runtime.Gosched() // a sweep is removing it: the map soon no longer holds it
	}
	m.live.Add(1)
	if n := m.added.Add(1); n >= m.nextSweep.Load() || (m.MaxLive > 0 && m.live.Load() > int64(m.MaxLive)) {
		m.evict()
	}
	return k, nil
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

// ErrNoKey is returned by Sessions.RoundTrip for a request whose context
// names no key (see WithKey): it is sent with nobody's token, never with a
// default one.
var ErrNoKey = errors.New("authrefresh: request has no key: use authrefresh.WithKey(ctx, key)")

// RoundTrip makes Sessions an http.RoundTripper for every key at once: the
// request is authenticated, refreshed and replayed by the Transport of the
// key its context names (WithKey). One http.Client serves every user.
func (m *Sessions) RoundTrip(req *http.Request) (*http.Response, error) {
	key, ok := req.Context().Value(keyKey{}).(string)
	if !ok {
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

// Logout ends key's session (see Session.Logout) and forgets it.
func (m *Sessions) Logout(ctx context.Context, key string) error {
	s, err := m.Get(key)
	if err != nil {
		return err
	}
	err = s.Logout(ctx)
	if v, ok := m.keys.Load(key); ok && v.(*keyed).session == s && m.keys.CompareAndDelete(key, v) {
		m.live.Add(-1)
	}
	return err
}

// Live is the number of live Sessions.
func (m *Sessions) Live() int { return int(m.live.Load()) }

// Stats returns the live Sessions' counters added up (evicted keys' are
// gone with them), and the number of live keys.
func (m *Sessions) Stats() (total Stats, live int) {
	m.keys.Range(func(_, v any) bool {
		total = total.add(v.(*keyed).session.Stats())
		live++
		return true
	})
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
// keys, so their cost is constant per addition; a key is evicted at the
// first sweep after it has been idle for MaxIdle. A Session with a refresh
// in flight is never evicted.
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
	over := m.MaxLive > 0 && m.live.Load() > int64(m.MaxLive)
	var idle []*keyed
	m.keys.Range(func(_, v any) bool {
		k := v.(*keyed)
		if k.used.Load() {
			k.used.Store(false)
			k.seen = now
		}
		busy := k.holds.Load() > 0 || k.session.refreshing()
		switch {
		case !busy && maxIdle > 0 && time.Duration(now-k.seen) >= maxIdle:
			m.remove(k)
		case !busy && over:
			idle = append(idle, k)
		}
		return true
	})
	m.nextSweep.Store(m.added.Load() + uint64(max(256, m.live.Load()/4)))
	target := int64(m.MaxLive - m.MaxLive/20)
	if !over || m.live.Load() <= target {
		return
	}
	slices.SortFunc(idle, func(a, b *keyed) int { return cmp.Compare(a.seen, b.seen) })
	for _, k := range idle {
		if m.live.Load() <= target {
			return
		}
		if k.holds.Load() <= 0 && !k.session.refreshing() {
			m.remove(k)
		}
	}
}

// remove evicts k unless a keep-alive pass holds it.
func (m *Sessions) remove(k *keyed) {
	if k.holds.CompareAndSwap(0, -1) && m.keys.CompareAndDelete(k.key, k) {
		m.live.Add(-1)
	}
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

// KeyFileName is a file name for key's FileStore that no other key shares,
// on any file system, and that stays inside its directory whatever the key
// holds (separators, dots, unicode, a kilobyte of text): a plain key (lower
// case letters, digits, - and _, at most 64) is kept readable, anything
// else is its SHA-256 in hex. Two keys that differ only in case ("alice",
// "Alice") name two files even where the file system ignores case (macOS,
// Windows).
//
// Keys with capital letters were kept readable before (k-Alice.token.json);
// their files now have the hashed name: rename each to KeyFileName(key)
// (in a shell: h-$(printf %s "$KEY" | sha256sum | cut -c1-64).token.json).
func KeyFileName(key string) string {
	if plainKey(key) {
		return "k-" + key + ".token.json"
	}
	sum := sha256.Sum256([]byte(key))
	return "h-" + hex.EncodeToString(sum[:]) + ".token.json"
}

// plainKey reports whether key can name its file as it is: lower case
// only, so that no two plain keys differ only in case.
func plainKey(key string) bool {
	if key == "" || len(key) > 64 {
		return false
	}
	return strings.IndexFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}
