package redisstore_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/redisstore"
)

func TestStoreAndStaleSaveRefused(t *testing.T) {
	r := startRedis(t)
	s := redisstore.New(r.Client(t), "stale")
	ctx := context.Background()
	if tok, err := s.Load(ctx); tok != nil || err != nil {
		t.Fatalf("empty store: %v %v", tok, err)
	}
	older := &authrefresh.Token{AccessToken: "older", RefreshToken: "r1"}
	newer := &authrefresh.Token{AccessToken: "newer", RefreshToken: "r2"}
	if ok, err := s.CompareAndSwap(ctx, nil, older); !ok || err != nil {
		t.Fatalf("first save: %v %v", ok, err)
	}
	if ok, _ := s.CompareAndSwap(ctx, older, newer); !ok {
		t.Fatal("swap from the current token refused")
	}
	// A holder whose lock expired mid-refresh tries to save over "older".
	if ok, err := s.CompareAndSwap(ctx, older, &authrefresh.Token{AccessToken: "stale"}); ok || err != nil {
		t.Fatalf("stale save accepted: %v %v", ok, err)
	}
	if tok, _ := s.Load(ctx); tok.AccessToken != "newer" || tok.RefreshToken != "r2" {
		t.Fatalf("stored %v, want the newer token", tok)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if tok, _ := s.Load(ctx); tok != nil {
		t.Fatal("Clear left the token")
	}
}

// Saving nil clears, as in every other Store: it never stores "null".
func TestSaveNilClears(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	stores := map[string]authrefresh.Store{
		"redis":  redisstore.New(r.Client(t), "nil"),
		"file":   filestore.New(t.TempDir() + "/tok.json"),
		"memory": authrefresh.NewMemoryStore(nil),
	}
	for name, s := range stores {
		if err := s.Save(ctx, &authrefresh.Token{AccessToken: "a"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, nil); err != nil {
			t.Fatalf("%s: Save(nil): %v", name, err)
		}
		if tok, err := s.Load(ctx); tok != nil || err != nil {
			t.Errorf("%s: after Save(nil), Load = %v, %v; want an empty store", name, tok, err)
		}
	}
}

// env is the reference server on a fake clock.
type env struct {
	*authtest.Server
	clock  *fakeclock.Clock
	server *authserver.Server
	url    string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := authtest.Start(t, authserver.Config{})
	return &env{Server: s, clock: s.Clock, server: s.Auth, url: s.URL}
}

// login is the demo user's token pair, undated (Session.Login dates it).
func (e *env) login(testing.TB) *authrefresh.Token { return e.Login() }

func (e *env) session(store authrefresh.Store, onChange func()) *authrefresh.Session {
	return e.NewSession(store, authrefresh.Options{OnTokenChange: func(_, _ *authrefresh.Token) { onChange() }})
}

// Eight Sessions, each with its own Redis connection (as separate processes
// would have), 50 goroutines each, across five token lifetimes: the fleet
// refreshes once per refresh-ahead interval, never twice for one token.
func TestFleetSharesOneRefreshPerLifetime(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t)
	const members, goroutines = 8, 50
	sessions := make([]*authrefresh.Session, members)
	clients := make([]*authrefresh.Client, members)
	changed := make([]chan struct{}, members)
	for i := range sessions {
		changed[i] = make(chan struct{}, 16)
		ch := changed[i]
		sessions[i] = e.session(redisstore.New(r.Client(t), "fleet"), func() { ch <- struct{}{} })
		c, err := authrefresh.NewClient(e.url+"/api/v1/", sessions[i])
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	if err := sessions[0].Login(context.Background(), e.login(t)); err != nil {
		t.Fatal(err)
	}
	<-changed[0]
	const step, total = 250 * time.Millisecond, 10 * time.Second
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		before := make([]uint64, members)
		for i, s := range sessions {
			before[i] = s.Stats().Refreshes + s.Stats().Adopted
		}
		var wg sync.WaitGroup
		errs := make(chan error, members*goroutines)
		for i := range clients {
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := clients[i].Get(context.Background(), "me", nil); err != nil {
						errs <- err
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("at %v: %v", elapsed, err)
		}
		for i, s := range sessions { // let background refreshes land before time moves
			for n := s.Stats().RefreshAheadStarts; before[i] < n; before[i]++ {
				<-changed[i]
			}
		}
		e.clock.Advance(step)
	}
	got := e.server.Counters()
	want := float64(total) / float64(1500*time.Millisecond)
	if math.Abs(float64(got.Refreshes)-want) > 1 || got.ReuseDetections != 0 || got.Unauthorized401s() != 0 {
		t.Fatalf("fleet: refreshes=%d (want %.1f ± 1) reuse=%d 401s=%d", got.Refreshes, want, got.ReuseDetections, got.Unauthorized401s())
	}
	var adopted uint64
	for _, s := range sessions {
		adopted += s.Stats().Adopted
	}
	if adopted == 0 {
		t.Fatal("no Session adopted another's token; the test did not exercise sharing")
	}
}

// Redis goes away: requests holding a valid token go on; a refresh that
// needs Redis fails transiently and names Redis; nobody is logged out; when
// Redis is back (empty: no persistence) the session carries on.
func TestRedisDownAndBack(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t)
	changed := make(chan struct{}, 16)
	s := e.session(redisstore.New(r.Client(t), "blink"), func() { changed <- struct{}{} })
	if err := s.Login(context.Background(), e.login(t)); err != nil {
		t.Fatal(err)
	}
	c, _ := authrefresh.NewClient(e.url+"/api/v1/", s)
	r.Stop()
	for i := 0; i < 20; i++ {
		if err := c.Get(context.Background(), "me", nil); err != nil {
			t.Fatalf("valid token, Redis down: %v", err)
		}
	}
	e.clock.Advance(3 * time.Second) // expired: a refresh is needed, and it needs Redis
	err := c.Get(context.Background(), "me", nil)
	if !errors.Is(err, authrefresh.ErrRefreshTransient) || errors.Is(err, authrefresh.ErrSessionExpired) || !strings.Contains(err.Error(), "redisstore") {
		t.Fatalf("Redis down at refresh: %v", err)
	}
	r.Start()
	e.clock.Advance(time.Minute) // past any backoff
	if err := c.Get(context.Background(), "me", nil); err != nil {
		t.Fatalf("after Redis came back: %v", err)
	}
	if got := e.server.Counters(); got.ReuseDetections != 0 || got.Refreshes != 1 {
		t.Fatalf("refreshes=%d reuse=%d", got.Refreshes, got.ReuseDetections)
	}
	if s.Stats().Rejections != 0 {
		t.Fatal("a Redis outage logged the session out")
	}
}

// With Expire, a saved token expires from Redis that long after each save,
// by Save and by CompareAndSwap; without, it stays until cleared.
func TestExpire(t *testing.T) {
	r := startRedis(t)
	rc := r.Client(t)
	ctx := context.Background()
	ttl := func() time.Duration {
		t.Helper()
		keys, err := rc.Keys(ctx, "*{abandoned}*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys %v (%v); want the token's only", keys, err)
		}
		return rc.PTTL(ctx, keys[0]).Val()
	}
	s := redisstore.New(rc, "abandoned")
	s.Expire = time.Hour
	first := &authrefresh.Token{AccessToken: "a1"}
	if err := s.Save(ctx, first); err != nil {
		t.Fatal(err)
	}
	if d := ttl(); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("after Save with Expire 1h: expires in %v", d)
	}
	s.Expire = 2 * time.Hour
	if ok, err := s.CompareAndSwap(ctx, first, &authrefresh.Token{AccessToken: "a2"}); !ok || err != nil {
		t.Fatalf("compare-and-swap: %v %v", ok, err)
	}
	if d := ttl(); d <= 119*time.Minute || d > 2*time.Hour {
		t.Fatalf("after CompareAndSwap with Expire 2h: expires in %v", d)
	}
	s.Expire = 0
	if err := s.Save(ctx, &authrefresh.Token{AccessToken: "a3"}); err != nil {
		t.Fatal(err)
	}
	if d := ttl(); d != -1 {
		t.Fatalf("after Save without Expire: %v; want no expiry (-1)", d)
	}
}
