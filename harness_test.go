package authrefresh_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is shared by the reference server and the Session, so tests move
// time across token expiries without sleeping.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New() }

// env is a reference server on loopback with a fake clock, and helpers to
// build Sessions against it.
type env struct {
	t      *testing.T
	clock  *fakeClock
	server *authserver.Server
	http   *httptest.Server
}

func newEnv(t *testing.T, cfg authserver.Config) *env {
	t.Helper()
	clock := newFakeClock()
	cfg.Clock = clock.Now
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 2 * time.Second
	}
	cfg.PasswordCost = bcrypt.MinCost
	srv, err := authserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return &env{t: t, clock: clock, server: srv, http: hs}
}

// login obtains a token pair from /auth/login as the demo user.
func (e *env) login() *authrefresh.Token {
	e.t.Helper()
	tok, err := authrefresh.PasswordLogin(context.Background(), nil, e.http.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	// PasswordLogin dates the token by the real clock; move it onto ours.
	life := tok.Expiry.Sub(tok.IssuedAt)
	tok.IssuedAt = e.clock.Now()
	tok.Expiry = tok.IssuedAt.Add(life)
	return tok
}

// refresher is the JSON refresher for the env's /auth/refresh, on the fake clock.
func (e *env) refresher() *authrefresh.JSONRefresher {
	return &authrefresh.JSONRefresher{URL: e.http.URL + "/auth/refresh", LogoutURL: e.http.URL + "/auth/logout", Clock: e.clock.Now}
}

// session returns a logged-in Session on store (nil: memory).
func (e *env) session(store authrefresh.Store, opts authrefresh.Options) *authrefresh.Session {
	e.t.Helper()
	opts.Clock = e.clock.Now
	s := authrefresh.NewSession(store, e.refresher(), opts)
	if err := s.Login(context.Background(), e.login()); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) client(s *authrefresh.Session) *authrefresh.Client {
	e.t.Helper()
	c, err := authrefresh.NewClient(e.http.URL+"/api/v1/", s)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// runParallel runs n copies of fn at once (released together) and returns
// their errors.
func runParallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func countErrors(errs []error) (n int, first error) {
	for _, err := range errs {
		if err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	return n, first
}
