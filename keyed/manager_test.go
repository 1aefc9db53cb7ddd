package keyed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/keyed"
)

// Many users, one http.Client: each request carries its own user's token,
// under refusals, failing refreshes and slow ones, across token lifetimes.
// The server says whose token every request carried (/api/v1/me's sub): a
// request of key K that reached the API as anyone but K would be a
// cross-user bleed.
func TestSessionsIsolationUnderFaults(t *testing.T) {
	users := 2000
	if testing.Short() || raceEnabled {
		users = 300 // go test ./... runs the 2,000
	}
	accounts := map[string]string{}
	for i := 0; i < users; i++ {
		accounts[fmt.Sprintf("user-%04d", i)] = fmt.Sprintf("password-%04d", i)
	}
	e := authtest.Start(t, authserver.Config{Users: accounts, AccessTTL: 2 * time.Second, GracePeriod: time.Minute,
		LoginFailuresPerUser: -1, LoginFailuresPerIP: -1})
	e.Auth.SetChaos(authserver.Chaos{RefreshFailRate: 0.05, RefreshLostRate: 0.02, RefreshLatencyMax: 2 * time.Millisecond})
	// Keys are not user names: separators, braces, unicode; every tenth
	// user's token in a file named by filestore.KeyFileName (one directory for all).
	keyOf := func(user string) string { return "tenant{7}/" + user + ":ü/..\\" }
	dir := t.TempDir()
	sessions := &keyed.Manager{
		New: func(key string) (keyed.Spec, error) {
			var store authrefresh.Store = authrefresh.NewMemoryStore(nil)
			if strings.Contains(key, "0:") {
				store = filestore.New(filepath.Join(dir, filestore.KeyFileName(key)))
			}
			return keyed.Spec{Store: store, Refresher: e.Refresher(),
				Options: authrefresh.Options{Clock: e.Clock.Now, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RefreshJitter: 0.1}}, nil
		},
		Origins: []string{e.URL},
	}
	ctx := context.Background()
	for user, password := range accounts {
		tok, err := jsonauth.Login(ctx, nil, e.URL+"/auth/login", user, password)
		if err != nil {
			t.Fatal(err)
		}
		if err := sessions.Login(ctx, keyOf(user), tok); err != nil {
			t.Fatal(err)
		}
	}
	hc := &http.Client{Transport: sessions}
	var answered, bled, failed atomic.Int64
	for round := 0; round < 6; round++ {
		if round%2 == 1 {
			e.Auth.RevokeAccessTokens() // every key's next request is refused: refresh and replay
		}
		authtestRun(t, users, func(i int) {
			user := fmt.Sprintf("user-%04d", i)
			req, _ := http.NewRequestWithContext(keyed.WithKey(ctx, keyOf(user)), http.MethodGet, e.URL+"/api/v1/me", nil)
			resp, err := hc.Do(req)
			if err != nil {
				failed.Add(1)
				if !errors.Is(err, authrefresh.ErrRefreshTransient) {
					t.Errorf("%s: %v", user, err)
				}
				return
			}
			defer resp.Body.Close()
			var me struct{ Sub string }
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&me) != nil {
				failed.Add(1)
				return
			}
			answered.Add(1)
			if me.Sub != user {
				bled.Add(1)
				t.Errorf("a request of %s carried the token of %q", user, me.Sub)
			}
		})
		e.Clock.Advance(time.Second)
	}
	total, live := sessions.Stats()
	t.Logf("%d users × 6 rounds: %d answered, %d failed (transient), %d cross-user; %d refreshes, %d live", users, answered.Load(), failed.Load(), bled.Load(), total.Refreshes, live)
	if bled.Load() != 0 || answered.Load() < int64(users*6*8/10) || e.Auth.Counters().ReuseDetections != 0 {
		t.Fatalf("answered %d, bled %d, reuse %d", answered.Load(), bled.Load(), e.Auth.Counters().ReuseDetections)
	}
	// A request that names no key is never sent with anybody's token.
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/v1/me", nil)
	if _, err := hc.Do(req); !errors.Is(err, keyed.ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
}

// authtestRun runs fn(i) for i < n on at most 32 goroutines.
func authtestRun(t *testing.T, n int, fn func(i int)) {
	t.Helper()
	work := make(chan int)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}

// Refreshes of different keys run in parallel: key A's refresh, stuck at the
// auth server, does not hold back key B's.
func TestSessionsRefreshKeysInParallel(t *testing.T) {
	clock := fakeclock.New()
	stuck, release := make(chan struct{}), make(chan struct{})
	sessions := &keyed.Manager{New: func(key string) (keyed.Spec, error) {
		ref := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
			if key == "a" {
				close(stuck)
				<-release
			}
			return &authrefresh.Token{AccessToken: key + "-fresh-token", ExpiresIn: time.Hour}, nil
		})
		return keyed.Spec{Refresher: ref, Options: authrefresh.Options{Clock: clock.Now}}, nil
	}}
	ctx := context.Background()
	for _, key := range []string{"a", "b"} {
		if err := sessions.Login(ctx, key, &authrefresh.Token{AccessToken: key + "-first-token", RefreshToken: "r", ExpiresIn: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Second)
	done := make(chan error, 1)
	go func() { _, err := sessions.Token(ctx, "a"); done <- err }()
	<-stuck
	if tok, err := sessions.Token(ctx, "b"); err != nil || tok.AccessToken != "b-fresh-token" {
		t.Fatalf("key b while key a's refresh is stuck: %v %v", tok, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Idle keys are evicted, their tokens staying in their stores (the next Get
// loads them, no refresh); a key with a refresh in flight never is.
func TestSessionsEvictIdleNeverInFlight(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Hour})
	dir := t.TempDir()
	stuck, release := make(chan struct{}), make(chan struct{})
	var refreshes atomic.Int32
	sessions := &keyed.Manager{
		MaxIdle: time.Minute, MaxLive: 2, Clock: e.Clock.Now,
		New: func(key string) (keyed.Spec, error) {
			ref := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
				refreshes.Add(1)
				if key == "busy" {
					close(stuck)
					<-release
				}
				return &authrefresh.Token{AccessToken: key + "-fresh", ExpiresIn: time.Hour}, nil
			})
			return keyed.Spec{Store: filestore.New(filepath.Join(dir, filestore.KeyFileName(key))), Refresher: ref,
				Options: authrefresh.Options{Clock: e.Clock.Now}}, nil
		},
	}
	ctx := context.Background()
	for _, key := range []string{"idle", "busy"} {
		if err := sessions.Login(ctx, key, &authrefresh.Token{AccessToken: key + "-token", RefreshToken: "r", ExpiresIn: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	busy, _ := sessions.Get("busy")
	done := make(chan error, 1)
	go func() { _, err := busy.Refresh(ctx); done <- err }()
	<-stuck
	e.Clock.Advance(2 * time.Minute)
	for i := 0; i < 3; i++ { // new keys past MaxLive: eviction runs
		_, _ = sessions.Get(fmt.Sprintf("new-%d", i))
	}
	if _, ok := sessions.KeyStats("idle"); ok {
		t.Fatal("the idle key was not evicted")
	}
	if _, ok := sessions.KeyStats("busy"); !ok {
		t.Fatal("a key with a refresh in flight was evicted")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tok, err := sessions.Token(ctx, "idle") // loaded again from its store
	if err != nil || tok.AccessToken != "idle-token" || refreshes.Load() != 1 {
		t.Fatalf("after eviction: %v %v, refreshes %d", tok, err, refreshes.Load())
	}
}

// 10,000 tokens issued in the same second, RefreshJitter 0.1: their
// refreshes start spread over the window (0.65–0.75 of the lifetime), not in
// one spike. Counted where they start: the refresh-ahead claims, one clock
// step (1 % of the lifetime) at a time.
func TestRefreshJitterSpreadsRefreshes(t *testing.T) {
	const n = 10000
	clock := fakeclock.New()
	sessions := &keyed.Manager{New: func(key string) (keyed.Spec, error) {
		ref := authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
			return &authrefresh.Token{AccessToken: key + "-fresh-token", ExpiresIn: time.Hour}, nil
		})
		return keyed.Spec{Refresher: ref, Options: authrefresh.Options{Clock: clock.Now, RefreshJitter: 0.1}}, nil
	}}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := sessions.Login(ctx, fmt.Sprint(i), &authrefresh.Token{AccessToken: fmt.Sprintf("token-%05d", i), RefreshToken: "r", ExpiresIn: 100 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	perStep := map[int]uint64{}
	var started uint64
	for step := 1; step <= 80; step++ {
		clock.Advance(time.Second)
		for i := 0; i < n; i++ {
			_, _ = sessions.Token(ctx, fmt.Sprint(i))
		}
		total, _ := sessions.Stats()
		if d := total.RefreshAheadStarts - started; d > 0 {
			perStep[step] = d
			if step < 65 || step > 76 {
				t.Errorf("%d refreshes started at %d %% of the lifetime", d, step)
			}
		}
		started = total.RefreshAheadStarts
	}
	var busiest uint64
	for _, c := range perStep {
		busiest = max(busiest, c)
	}
	t.Logf("%d refreshes started over %d one-second steps, the busiest %d (%.0f %%): %v", started, len(perStep), busiest, 100*float64(busiest)/n, perStep)
	if started != n || len(perStep) < 8 || busiest > n/5 {
		t.Fatalf("refreshes bunched: %d started over %d steps, busiest %d", started, len(perStep), busiest)
	}
}

// keyed.Manager.Stats adds up every counter of its keys, UnknownExpiry too.
func TestSessionsStatsAddEveryCounter(t *testing.T) {
	m := &keyed.Manager{New: func(string) (keyed.Spec, error) {
		return keyed.Spec{Store: authrefresh.NewMemoryStore(nil), Refresher: authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
			return nil, errors.New("unused")
		})}, nil
	}}
	for _, key := range []string{"a", "b"} {
		if err := m.Login(context.Background(), key, &authrefresh.Token{AccessToken: "opaque-" + key, RefreshToken: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	if total, live := m.Stats(); total.UnknownExpiry != 2 || live != 2 {
		t.Fatalf("UnknownExpiry %d over %d keys; want 2", total.UnknownExpiry, live)
	}
}

// A key has at most one live Session in a process, whatever its store: with
// MaxLive far below the keys in use, eviction runs all the time, and a key
// evicted between a caller's lookup and its refresh must not get a second
// Session presenting the same refresh token (the provider then revokes the
// family: reuse detection). Each key's store is a MemoryStore of its own —
// no Locker, as an application's own database table would be.
func TestSessionsOneSessionPerKeyUnderEviction(t *testing.T) {
	const keys, callers, lifetimes = 200, 3, 3
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Minute})
	stores := map[string]*authrefresh.MemoryStore{}
	for i := 0; i < keys; i++ {
		stores[fmt.Sprintf("user-%03d", i)] = authrefresh.NewMemoryStore(nil)
	}
	m := &keyed.Manager{MaxLive: 10, Clock: e.Clock.Now, New: func(key string) (keyed.Spec, error) {
		return keyed.Spec{Store: stores[key], Refresher: e.Refresher(), Options: authrefresh.Options{Clock: e.Clock.Now}}, nil
	}}
	for key := range stores {
		if err := m.Login(context.Background(), key, e.Login()); err != nil {
			t.Fatal(err)
		}
	}
	var failed atomic.Int64
	for round := 0; round < lifetimes; round++ {
		e.Clock.Advance(61 * time.Second) // every token expired: each key's callers must refresh
		var wg sync.WaitGroup
		for key := range stores {
			for c := 0; c < callers; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := m.Token(context.Background(), key); err != nil {
						failed.Add(1)
					}
				}()
			}
		}
		wg.Wait()
	}
	c := e.Auth.Counters()
	t.Logf("%d refreshes, %d reuse detections, %d failed calls, %d live", c.Refreshes, c.ReuseDetections, failed.Load(), m.Live())
	if c.ReuseDetections != 0 || failed.Load() != 0 {
		t.Fatalf("%d refresh-token reuses and %d failed calls: a key had two keyed.Manager", c.ReuseDetections, failed.Load())
	}
	if c.Refreshes != keys*lifetimes {
		t.Fatalf("%d refreshes, want one per key per lifetime (%d)", c.Refreshes, keys*lifetimes)
	}
}

// Keys are evicted on time, not only when other keys arrive: one timer
// (no goroutine per key) sweeps while keys are live, and stops when none
// is. Each eviction is counted in Stats and the sweep logs a record.
func TestSessionsEvictOnTime(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	var sweeps []func()
	var every []time.Duration
	var logged atomic.Int32
	m := &keyed.Manager{MaxIdle: time.Minute, Clock: func() time.Time { return time.Unix(0, now.Load()) },
		Logger: slog.New(countingHandler{&logged}),
		New: func(string) (keyed.Spec, error) {
			return keyed.Spec{Store: authrefresh.NewMemoryStore(nil), Refresher: authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
				return nil, errors.New("unused")
			})}, nil
		}}
	keyed.SetSweepSchedule(m, func(d time.Duration, sweep func()) { every = append(every, d); sweeps = append(sweeps, sweep) })
	var kept *authrefresh.Session
	for i := 0; i < 30; i++ {
		s, err := m.Get(fmt.Sprintf("user-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 7 {
			kept = s
		}
	}
	if len(sweeps) != 1 || every[0] != 15*time.Second {
		t.Fatalf("%d timed sweeps scheduled every %v; want one, every quarter of MaxIdle", len(sweeps), every)
	}
	sweeps[0]() // traffic has stopped; not yet idle for a minute
	if m.Live() != 30 || len(sweeps) != 2 {
		t.Fatalf("live %d, sweeps %d after a sweep within MaxIdle", m.Live(), len(sweeps))
	}
	now.Add(int64(2 * time.Minute))
	sweeps[1]()
	if total, live := m.Stats(); live != 0 || total.Evictions != 30 || logged.Load() != 1 {
		t.Fatalf("after MaxIdle with no traffic: %d live, %d evictions, %d log records; want 0, 30, 1", live, total.Evictions, logged.Load())
	}
	if len(sweeps) != 2 {
		t.Fatal("the timer went on with no key live")
	}
	// A Session kept from Get outlives its eviction: the key's next use
	// takes it back rather than making a second one over the same store.
	if again, err := m.Get("user-7"); err != nil || again != kept {
		t.Fatalf("after eviction, user-7 got another Session (%v) while the first is in use", err)
	}
	runtime.KeepAlive(kept)
}

// countingHandler counts the records logged.
type countingHandler struct{ n *atomic.Int32 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// Keys come from outside: the number of live keys is bounded by default,
// and an empty key — the anonymous visitors of an app whose user id is "" —
// is refused everywhere rather than shared.
func TestSessionsBoundedByDefaultAndNoEmptyKey(t *testing.T) {
	m := &keyed.Manager{New: func(string) (keyed.Spec, error) {
		return keyed.Spec{Store: authrefresh.NewMemoryStore(nil), Refresher: authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
			return nil, errors.New("unused")
		})}, nil
	}}
	if got := keyed.MaxLiveOf(m); got != keyed.DefaultMaxLive {
		t.Fatalf("MaxLive 0 bounds at %d, want keyed.DefaultMaxLive", got)
	}
	m.MaxLive = 50
	for i := 0; i < 500; i++ {
		m.Get(fmt.Sprintf("k%d", i))
	}
	if m.Live() > 50 {
		t.Fatalf("%d live keys with MaxLive 50", m.Live())
	}
	ctx := context.Background()
	if err := m.Login(ctx, "", &authrefresh.Token{AccessToken: "a"}); !errors.Is(err, keyed.ErrNoKey) {
		t.Fatalf("Login with an empty key: %v", err)
	}
	if _, err := m.Get(""); !errors.Is(err, keyed.ErrNoKey) {
		t.Fatalf("Get with an empty key: %v", err)
	}
	req, _ := http.NewRequestWithContext(keyed.WithKey(ctx, ""), "GET", "http://127.0.0.1:1/", nil)
	if _, err := m.RoundTrip(req); !errors.Is(err, keyed.ErrNoKey) {
		t.Fatalf("a request with an empty key: %v", err)
	}
}
