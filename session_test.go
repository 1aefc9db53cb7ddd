package authrefresh_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
)

// 1,000 goroutines hold an expired token: exactly one refresh, all succeed.

func TestExpiredTokenThousandGoroutinesOneRefresh(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	c := e.Client(s)
	e.Clock.Advance(3 * time.Second) // past the 2s lifetime
	errs := authtest.RunParallel(1000, func(int) error { return c.Get(context.Background(), "me", nil) })
	if n, first := authtest.CountErrors(errs); n > 0 {
		t.Fatalf("%d of 1000 requests failed, first: %v", n, first)
	}
	got := e.Auth.Counters()
	if got.Refreshes != 1 {
		t.Fatalf("server saw %d refreshes, want exactly 1", got.Refreshes)
	}
	if got.Unauthorized401s() != 0 {
		t.Fatalf("server refused %d requests; an expired token must be refreshed before sending", got.Unauthorized401s())
	}
	if st := s.Stats(); st.Refreshes != 1 || st.Waits == 0 {
		t.Fatalf("stats = %+v, want 1 refresh and waiters", st)
	}
}

// 1,000 concurrent requests refused with 401 (access tokens revoked by the
// server): exactly one refresh, every request replayed and successful.
func TestThousandRefusalsOneRefresh(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	c := e.Client(s)
	e.Auth.RevokeAccessTokens()
	// Slow refreshes keep the refused requests arriving while it runs.
	e.Auth.SetRefreshLatency(100 * time.Millisecond)
	errs := authtest.RunParallel(1000, func(int) error { return c.Get(context.Background(), "me", nil) })
	if n, first := authtest.CountErrors(errs); n > 0 {
		t.Fatalf("%d of 1000 requests failed, first: %v", n, first)
	}
	got := e.Auth.Counters()
	if got.Refreshes != 1 || got.ReuseDetections != 0 {
		t.Fatalf("refreshes=%d reuse=%d, want 1 and 0", got.Refreshes, got.ReuseDetections)
	}
	if got.Unauthorized["revoked"] == 0 {
		t.Fatal("no request was refused; the test did not exercise the 401 path")
	}
	if st := s.Stats(); st.Refusals != got.Unauthorized["revoked"] {
		t.Fatalf("replays=%d, refusals=%d: every refused request must be replayed once", st.Refusals, got.Unauthorized["revoked"])
	}
}

// A refusal of a token that was already replaced replays with the current
// token and refreshes nothing.
func TestStaleRefusalReplaysWithoutRefresh(t *testing.T) {
	var refreshes atomic.Int32
	ref := authrefresh.RefreshFunc(func(_ context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		n := refreshes.Add(1)
		return &authrefresh.Token{AccessToken: fmt.Sprintf("access-%d", n), RefreshToken: "r"}, nil
	})
	s := authrefresh.NewSession(nil, ref, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "access-0", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Token(context.Background())
	if _, err := s.Refresh(context.Background()); err != nil { // someone else refreshed meanwhile
		t.Fatal(err)
	}
	got, err := s.Refused(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "access-1" || refreshes.Load() != 1 {
		t.Fatalf("got %s after %d refreshes; want access-1 and no second refresh", got.AccessToken, refreshes.Load())
	}
	if s.Stats().StaleRefusals != 1 {
		t.Fatalf("StaleRefusals = %d, want 1", s.Stats().StaleRefusals)
	}
}

// Steady traffic across many lifetimes: refresh-ahead keeps every request on a
// valid token, nobody waits, and refreshes match the refresh-ahead interval.
func TestSteadyTrafficRefreshAhead(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: 2 * time.Second})
	renewed := make(chan struct{}, 100)
	s := e.Session(nil, authrefresh.Options{RefreshAhead: 0.75, OnTokenChange: func(_, _ *authrefresh.Token) { renewed <- struct{}{} }})
	<-renewed // the Login
	c := e.Client(s)
	const step = 50 * time.Millisecond
	const total = 12 * time.Second // six lifetimes
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		before := s.Stats().RefreshAheadStarts
		errs := authtest.RunParallel(8, func(int) error { return c.Get(context.Background(), "me", nil) })
		if n, first := authtest.CountErrors(errs); n > 0 {
			t.Fatalf("at %v: %d requests failed: %v", elapsed, n, first)
		}
		if s.Stats().RefreshAheadStarts > before {
			<-renewed // let the background refresh land before time moves on
		}
		e.Clock.Advance(step)
	}
	got := e.Auth.Counters()
	if got.Unauthorized401s() != 0 {
		t.Fatalf("%d requests refused; refresh-ahead must prevent every expiry 401", got.Unauthorized401s())
	}
	want := float64(total) / float64(1500*time.Millisecond) // one refresh per 0.75 lifetime
	if math.Abs(float64(got.Refreshes)-want) > 1 {
		t.Fatalf("refreshes = %d, want %.1f ± 1", got.Refreshes, want)
	}
	if st := s.Stats(); st.Waits != 0 || got.ReuseDetections != 0 {
		t.Fatalf("waits=%d reuse=%d, want 0 and 0", st.Waits, got.ReuseDetections)
	}
}

// A rejected refresh ends the session for everyone at once, exactly once.
func TestRejectedRefreshEndsSession(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	var expiredHook atomic.Int32
	store := &authrefresh.MemoryStore{}
	s := e.Session(store, authrefresh.Options{OnSessionExpired: func(error) { expiredHook.Add(1) }})
	tok, _ := s.Token(context.Background())
	e.Auth.RevokeRefreshToken(tok.RefreshToken)
	e.Clock.Advance(3 * time.Second)
	errs := authtest.RunParallel(200, func(int) error { _, err := s.Token(context.Background()); return err })
	for i, err := range errs {
		if !errors.Is(err, authrefresh.ErrSessionExpired) {
			t.Fatalf("waiter %d got %v, want ErrSessionExpired", i, err)
		}
		if !errors.Is(err, authrefresh.ErrRefreshRejected) {
			t.Fatalf("waiter %d: the rejection should be in the chain: %v", i, err)
		}
	}
	if expiredHook.Load() != 1 {
		t.Fatalf("OnSessionExpired fired %d times, want 1", expiredHook.Load())
	}
	if stored, _ := store.Load(context.Background()); stored != nil {
		t.Fatal("store still holds the dead token")
	}
	before := e.Auth.Counters().Requests
	_, err := s.Token(context.Background())
	if !errors.Is(err, authrefresh.ErrSessionExpired) {
		t.Fatalf("later call got %v", err)
	}
	if err := e.Client(s).Get(context.Background(), "me", nil); !errors.Is(err, authrefresh.ErrSessionExpired) {
		t.Fatalf("later request got %v", err)
	}
	after := e.Auth.Counters().Requests
	for k, v := range after {
		if before[k] != v {
			t.Fatalf("after the session ended, %s got %d more requests; want none", k, v-before[k])
		}
	}
	// Login starts over.
	if err := s.Login(context.Background(), e.Login()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("after Login: %v", err)
	}
}

// A waiter whose context ends leaves at once; the refresh goes on for others.
func TestCancelledWaiterLeavesRefreshGoesOn(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	ref := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &authrefresh.Token{AccessToken: "new", RefreshToken: "r2"}, nil
	})
	clock := fakeclock.New()
	s := authrefresh.NewSession(nil, ref, authrefresh.Options{Clock: clock.Now})
	_ = s.Login(context.Background(), &authrefresh.Token{AccessToken: "old", RefreshToken: "r1", IssuedAt: clock.Now(), Expiry: clock.Now().Add(time.Second)})
	clock.Advance(2 * time.Second)

	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan error)
	go func() { _, err := s.Token(ctxA); doneA <- err }()
	<-started
	doneB := make(chan *authrefresh.Token)
	go func() { tok, _ := s.Token(context.Background()); doneB <- tok }()
	cancelA()
	if err := <-doneA; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v, want context.Canceled", err)
	}
	close(release)
	if tok := <-doneB; tok == nil || tok.AccessToken != "new" {
		t.Fatalf("other waiter got %v", tok)
	}
}

// Sequential calls from one goroutine reach the server in order, also across
// an expiry and a refusal (seed 003's concern).
func TestSequentialCallsStayInOrder(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	c := e.Client(e.Session(nil, authrefresh.Options{}))
	for i := 0; i < 30; i++ {
		switch i {
		case 10:
			e.Clock.Advance(3 * time.Second)
		case 20:
			e.Auth.RevokeAccessTokens()
		}
		if err := c.Post(context.Background(), "data", map[string]any{"name": fmt.Sprintf("seq-%02d", i), "price": 1}, nil); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	products := e.Auth.Products()
	if len(products) != 30 {
		t.Fatalf("server has %d products, want 30", len(products))
	}
	for i, p := range products {
		if want := fmt.Sprintf("seq-%02d", i); p.Name != want {
			t.Fatalf("product %d is %q, want %q", i, p.Name, want)
		}
	}
}

// Logout revokes the refresh token on the server and ends the session.
func TestLogoutRevokesAndEnds(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	store := &authrefresh.MemoryStore{}
	s := e.Session(store, authrefresh.Options{})
	tok, _ := s.Token(context.Background())
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(context.Background()); !errors.Is(err, authrefresh.ErrNotLoggedIn) {
		t.Fatalf("after Logout: %v", err)
	}
	if got, _ := store.Load(context.Background()); got != nil {
		t.Fatal("Logout left the token in the store")
	}
	// The refresh token was revoked server-side: using it fails.
	_, err := e.Refresher().Refresh(context.Background(), tok)
	if !errors.Is(err, authrefresh.ErrRefreshRejected) {
		t.Fatalf("refresh with a logged-out token: %v", err)
	}
}

// A stored token with an Expiry but no IssuedAt is dated on adoption: an
// hour left means no refresh, not a refresh-ahead deadline overflowed into
// the past.
func TestStoredTokenWithoutIssuedAt(t *testing.T) {
	var calls atomic.Int32
	ref := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		calls.Add(1)
		return &authrefresh.Token{AccessToken: "new-access-token", Expiry: time.Now().Add(time.Hour)}, nil
	})
	s := authrefresh.NewSession(authrefresh.NewMemoryStore(&authrefresh.Token{AccessToken: "opaque-access-token", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}), ref, authrefresh.Options{})
	for i := 0; i < 3; i++ {
		if _, err := s.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.RefreshAheadStarts != 0 || st.Refreshes != 0 {
		t.Fatalf("a token with an hour left was refreshed: %+v", st)
	}
}

// Session.Refused reports a fresh token refused again as a *NotReplayedError
// wrapping ErrFreshTokenRefused, not as an unexported error.
func TestRefreshRefusedAgainIsNotReplayedError(t *testing.T) {
	var n atomic.Int32
	ref := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		n.Add(1)
		return &authrefresh.Token{AccessToken: "access-token-" + string(rune('a'+n.Load())), RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}, nil
	})
	s := authrefresh.NewSession(nil, ref, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "first-access-token", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	first, _ := s.Token(context.Background())
	second, err := s.Refused(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Refused(context.Background(), second)
	var refused *authrefresh.NotReplayedError
	if !errors.As(err, &refused) || !errors.Is(err, authrefresh.ErrFreshTokenRefused) {
		t.Fatalf("refused again: %T %v; want a *NotReplayedError", err, err)
	}
}

// An ended session heals when another process logs in: at most once per
// MinBackoff a call reads the store, finds a token other than the dead one,
// and the session resumes with it — no restart, no Login in this process.
func TestEndedSessionResumesWithNewLogin(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	path := filepath.Join(t.TempDir(), "token.json")
	var expired atomic.Int32
	s := e.Session(filestore.New(path), authrefresh.Options{OnSessionExpired: func(error) { expired.Add(1) }})
	ctx := context.Background()
	tok, _ := s.Token(ctx)
	e.Auth.RevokeRefreshToken(tok.RefreshToken)
	e.Clock.Advance(3 * time.Second)
	if _, err := s.Token(ctx); !errors.Is(err, authrefresh.ErrSessionExpired) {
		t.Fatalf("after the revocation: %v", err)
	}
	// Within MinBackoff, and with nothing new in the store: still ended, and
	// the store is read at most once per interval.
	for i := 0; i < 100; i++ {
		if _, err := s.Token(ctx); !errors.Is(err, authrefresh.ErrSessionExpired) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// "authrefresh login" in another process: a new Session on the same file.
	other := e.Session(filestore.New(path), authrefresh.Options{})
	fresh, _ := other.Token(ctx)
	if _, err := s.Token(ctx); !errors.Is(err, authrefresh.ErrSessionExpired) {
		t.Fatalf("before the interval: %v", err)
	}
	e.Clock.Advance(200 * time.Millisecond) // Options.MinBackoff
	got, err := s.Token(ctx)
	if err != nil || got.AccessToken != fresh.AccessToken {
		t.Fatalf("after the new login: %v %v", got, err)
	}
	if st := s.Stats(); st.Resumed != 1 || expired.Load() != 1 {
		t.Fatalf("stats %+v, expired hook %d", st, expired.Load())
	}
	// The resumed session refreshes as usual.
	e.Clock.Advance(3 * time.Second)
	if _, err := s.Token(ctx); err != nil || e.Auth.Counters().ReuseDetections != 0 {
		t.Fatalf("refresh after resume: %v, reuse %d", err, e.Auth.Counters().ReuseDetections)
	}
}

// Logout in one process, login in another: the first resumes too.
func TestLoggedOutSessionResumesWithNewLogin(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	path := filepath.Join(t.TempDir(), "token.json")
	s := e.Session(filestore.New(path), authrefresh.Options{})
	ctx := context.Background()
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Second)
	if _, err := s.Token(ctx); !errors.Is(err, authrefresh.ErrNotLoggedIn) {
		t.Fatalf("after Logout, empty store: %v", err)
	}
	e.Session(filestore.New(path), authrefresh.Options{})
	e.Clock.Advance(time.Second)
	if _, err := s.Token(ctx); err != nil {
		t.Fatalf("after a login elsewhere: %v", err)
	}
}

// A store rolled back to an older token (a Redis failover that lost the last
// write, a restore from a snapshot) never makes the Session present a refresh
// token that was already rotated away: it refreshes with the newer token it
// holds, and writes the result back over the old one.
func TestRolledBackStoreNeverPresentsOldToken(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	store := authrefresh.NewMemoryStore(nil)
	s := e.Session(store, authrefresh.Options{})
	ctx := context.Background()
	first, _ := store.Load(ctx)
	e.Clock.Advance(3 * time.Second)
	second, err := s.Token(ctx) // refreshed: the server rotated first's refresh token away
	if err != nil || second.Generation != first.Generation+1 {
		t.Fatalf("refresh: %v, generations %d → %d", err, first.Generation, second.Generation)
	}
	_ = store.Save(ctx, first) // the failover: the store is back at the first token
	e.Clock.Advance(3 * time.Second)
	third, err := s.Token(ctx)
	if err != nil {
		t.Fatalf("after the rollback: %v", err)
	}
	if got := e.Auth.Counters(); got.ReuseDetections != 0 || got.Refreshes != 2 {
		t.Fatalf("reuse detections %d, refreshes %d: the old refresh token was presented", got.ReuseDetections, got.Refreshes)
	}
	if repaired, _ := store.Load(ctx); repaired.AccessToken != third.AccessToken || repaired.Generation != second.Generation+1 {
		t.Fatalf("store not repaired: generation %d, want %d", repaired.Generation, second.Generation+1)
	}
	// Another Session that finds the old token in the store does not adopt it
	// over a newer one it holds.
	_ = store.Save(ctx, first)
	if tok, err := s.Refresh(ctx); err != nil || tok.Generation != third.Generation+1 || e.Auth.Counters().ReuseDetections != 0 {
		t.Fatalf("forced refresh over a rolled-back store: %v %v", tok, err)
	}
}
