package keyed_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/keyed"
	"github.com/authrefresh/authrefresh/oauth"
)

func keyNames(n int) func(context.Context) iter.Seq[string] {
	return func(context.Context) iter.Seq[string] {
		return func(yield func(string) bool) {
			for i := 0; i < n; i++ {
				if !yield(fmt.Sprintf("user-%02d", i)) {
					return
				}
			}
		}
	}
}

// Keys with no traffic are refreshed once their tokens pass MaxAge — once,
// even by two processes passing at the same time over the same stores — no
// more than the RefreshLimit at once toward the token endpoint; a key with
// no session is reported; keys a pass loaded are evicted after it.
func TestKeepAliveRefreshesIdleKeysOnce(t *testing.T) {
	const keys = 40
	e := authtest.Start(t, authserver.Config{AccessTTL: 24 * time.Hour})
	e.Auth.SetChaos(authserver.Chaos{RefreshLatencyMax: 2 * time.Millisecond})
	dir := t.TempDir()
	limit := keyed.NewRefreshLimit(3)
	var inFlight, peak atomic.Int64
	counted := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		return e.Refresher().Refresh(ctx, tok)
	})
	process := func() *keyed.Manager { // one per process: they share only the files
		return &keyed.Manager{New: func(key string) (keyed.Spec, error) {
			return keyed.Spec{
				Store:     filestore.New(filepath.Join(dir, filestore.KeyFileName(key))),
				Refresher: limit.Wrap(counted),
				Options:   authrefresh.Options{Clock: e.Clock.Now},
			}, nil
		}}
	}
	a, b := process(), process()
	ctx := context.Background()
	for i := 0; i < keys; i++ {
		if err := a.Login(ctx, fmt.Sprintf("user-%02d", i), e.Login()); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var failed []string
	keepers := func(s *keyed.Manager) *keyed.KeepAlive {
		return &keyed.KeepAlive{Manager: s, Keys: keyNames(keys + 1), MaxAge: 6 * time.Hour, Concurrency: 8,
			OnError: func(key string, err error) {
				mu.Lock()
				defer mu.Unlock()
				if !errors.Is(err, authrefresh.ErrNotLoggedIn) {
					t.Errorf("%s: %v", key, err)
				}
				failed = append(failed, key)
			}}
	}
	both := func() (refreshed int) {
		var wg sync.WaitGroup
		reports := make([]keyed.KeepAliveReport, 2)
		for i, s := range []*keyed.Manager{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); reports[i] = keepers(s).Pass(ctx) }()
		}
		wg.Wait()
		for _, r := range reports {
			if r.Keys != keys+1 || r.Failed != 1 {
				t.Fatalf("report %+v: want %d keys, 1 failed (the one never logged in)", r, keys+1)
			}
			refreshed += r.Refreshed
		}
		return refreshed
	}

	e.Clock.Advance(5 * time.Hour)
	if n := both(); n != 0 || e.Auth.Counters().Refreshes != 0 {
		t.Fatalf("tokens younger than MaxAge: %d refreshed, server saw %d", n, e.Auth.Counters().Refreshes)
	}
	e.Clock.Advance(2 * time.Hour)
	n := both()
	c := e.Auth.Counters()
	if n != keys || c.Refreshes != keys || c.ReuseDetections != 0 {
		t.Fatalf("past MaxAge: %d refreshed, server saw %d refreshes and %d reuses; want %d, %d, 0", n, c.Refreshes, c.ReuseDetections, keys, keys)
	}
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d refreshes at once through a RefreshLimit of 3", p)
	}
	if n := both(); n != 0 || e.Auth.Counters().Refreshes != keys {
		t.Fatalf("a second pass refreshed %d", n)
	}
	if len(failed) != 6 || failed[0] != fmt.Sprintf("user-%02d", keys) {
		t.Fatalf("reported failures %v", failed)
	}
	// b had no traffic: what its passes loaded is gone; a's users stay.
	if b.Live() != 0 || a.Live() != keys {
		t.Fatalf("live after the passes: a %d, b %d; want %d, 0", a.Live(), b.Live(), keys)
	}
}

// Run passes until its context ends, and returns its error.
func TestKeepAliveRunStopsWithContext(t *testing.T) {
	passes := make(chan struct{}, 1)
	users := &keyed.Manager{New: func(string) (keyed.Spec, error) {
		return keyed.Spec{Store: authrefresh.NewMemoryStore(nil)}, nil
	}}
	ka := &keyed.KeepAlive{Manager: users, Interval: time.Hour, Keys: func(context.Context) iter.Seq[string] {
		return func(func(string) bool) { passes <- struct{}{} }
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ka.Run(ctx) }()
	<-passes // the first pass starts at once
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

// A refresh waiting for a RefreshLimit slot gives up with its context, as a
// transient failure.
func TestRefreshLimitHonoursContext(t *testing.T) {
	limit := keyed.NewRefreshLimit(1)
	entered, release := make(chan struct{}), make(chan struct{})
	slow := limit.Wrap(authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
		close(entered)
		<-release
		return &authrefresh.Token{AccessToken: "a"}, nil
	}))
	done := make(chan error)
	go func() { _, err := slow.Refresh(context.Background(), &authrefresh.Token{}); done <- err }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := slow.Refresh(ctx, &authrefresh.Token{}); !errors.Is(err, authrefresh.ErrRefreshTransient) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if limit.InFlight() != 1 {
		t.Fatalf("in flight %d", limit.InFlight())
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Wrapping hides nothing: a limited oauth.ClientCredentials still acquires (100
// callers, no Login, one token request, within the limit), a limited
// Revoker still revokes, and a Refresher that cannot revoke or acquire does
// not pretend to.
func TestRefreshLimitKeepsCapabilities(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Minute})
	cc := &oauth.ClientCredentials{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret}
	limit := keyed.NewRefreshLimit(1)
	s := authrefresh.NewSession(authrefresh.NewMemoryStore(nil), limit.Wrap(cc), authrefresh.Options{Clock: e.Clock.Now})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Token(context.Background()); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n, calls := failed.Load(), e.Auth.Counters().Requests["/oauth/token"]; n != 0 || calls != 1 {
		t.Fatalf("%d of 100 callers failed, %d token requests; want 0 and 1", n, calls)
	}

	plain := authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) { return nil, nil })
	revoker := &oauth.Config{TokenURL: "http://127.0.0.1:1/token", RevocationURL: "http://127.0.0.1:1/revoke", ClientID: "c"}
	for _, c := range []struct {
		name              string
		r                 authrefresh.Refresher
		revokes, acquires bool
	}{
		{"a plain Refresher", plain, false, false},
		{"an oauth.Config", revoker, true, false},
		{"oauth.ClientCredentials", cc, cc != nil && isRevoker(cc), true},
	} {
		w := limit.Wrap(c.r)
		if _, ok := w.(authrefresh.Revoker); ok != c.revokes {
			t.Errorf("%s wrapped: Revoker %v, want %v", c.name, ok, c.revokes)
		}
		if _, ok := w.(authrefresh.Acquirer); ok != c.acquires {
			t.Errorf("%s wrapped: Acquirer %v, want %v", c.name, ok, c.acquires)
		}
	}
}

func isRevoker(r authrefresh.Refresher) bool { _, ok := r.(authrefresh.Revoker); return ok }
