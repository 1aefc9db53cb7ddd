package authrefresh_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/jsonauth"
)

// Transient failures keep the session, are spaced by backoff, and heal.
func TestTransientFailuresBackOffThenHeal(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	var expired atomic.Int32
	// BackoffWait -1: calls during the backoff fail fast (waiting is tested below).
	s := e.Session(nil, authrefresh.Options{MinBackoff: time.Second, MaxBackoff: 4 * time.Second, BackoffWait: -1, OnSessionExpired: func(error) { expired.Add(1) }})
	e.Auth.FailNextRefreshes(3)
	e.Clock.Advance(3 * time.Second)
	refreshCalls := func() uint64 { return e.Auth.Counters().Requests["/auth/refresh"] }
	for attempt := 1; attempt <= 3; attempt++ {
		_, err := s.Token(context.Background())
		if !errors.Is(err, authrefresh.ErrRefreshTransient) || errors.Is(err, authrefresh.ErrSessionExpired) {
			t.Fatalf("attempt %d: got %v, want a transient error", attempt, err)
		}
		calls := refreshCalls()
		if calls != uint64(attempt) {
			t.Fatalf("attempt %d: %d refresh calls", attempt, calls)
		}
		// Within the backoff: refused fast, and the server is not hit.
		for i := 0; i < 5; i++ {
			if _, err := s.Token(context.Background()); !errors.Is(err, authrefresh.ErrRefreshTransient) {
				t.Fatalf("during backoff: %v", err)
			}
		}
		if refreshCalls() != calls {
			t.Fatal("a call during the backoff reached the server")
		}
		e.Clock.Advance(4 * time.Second) // the cap
	}
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("after healing: %v", err)
	}
	if expired.Load() != 0 || s.Stats().TransientFailures != 3 || s.Stats().BackoffRefusals != 15 {
		t.Fatalf("expired=%d stats=%+v", expired.Load(), s.Stats())
	}
}

// A refresh that fails once (a 503) costs its callers a short wait for the
// next attempt, not an error; a call whose deadline comes before the next
// attempt fails fast. Real clock: the wait is real time.
func TestShortBackoffIsWaitedOut(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Hour})
	expiredLogin := func(s *authrefresh.Session) {
		tok := e.Login()
		tok.IssuedAt, tok.Expiry = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour) // expired by the Session's (real) clock
		if err := s.Login(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	s := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: e.URL + "/auth/refresh"}, authrefresh.Options{MinBackoff: 40 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	expiredLogin(s)
	e.Auth.FailNextRefreshes(1)
	errs := authtest.RunParallel(20, func(int) error { _, err := s.Token(context.Background()); return err })
	if n, first := authtest.CountErrors(errs); n > 0 {
		t.Fatalf("%d of 20 callers failed (%v); one 503 followed by a 40-ms backoff should cost them a wait", n, first)
	}
	if st := s.Stats(); st.BackoffRefusals != 0 || st.Refreshes != 1 || st.TransientFailures != 1 || e.Auth.Counters().InjectedFailures != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A backoff longer than the caller's deadline: fail fast, no waiting.
	slow := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: e.URL + "/auth/refresh"}, authrefresh.Options{MinBackoff: time.Hour, BackoffWait: 2 * time.Hour})
	expiredLogin(slow)
	e.Auth.FailNextRefreshes(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 2; i++ { // the failed attempt, then a call during the backoff
		if _, err := slow.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshTransient) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: %v, want the transient error at once", i, err)
		}
	}
	if slow.Stats().BackoffRefusals != 1 {
		t.Fatalf("stats %+v", slow.Stats())
	}
}
