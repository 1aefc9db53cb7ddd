package authrefresh_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
)

// A panicking Refresher releases its waiters with an error instead of
// deadlocking them or crashing the process; a Session without a Refresher
// ends when its token expires.
func TestRefresherPanicAndNilRefresher(t *testing.T) {
	clock := fakeclock.New()
	tok := &authrefresh.Token{AccessToken: "a", RefreshToken: "r", IssuedAt: clock.Now(), Expiry: clock.Now().Add(time.Second)}
	boom := authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) { panic("boom") })
	s := authrefresh.NewSession(nil, boom, authrefresh.Options{Clock: clock.Now})
	_ = s.Login(context.Background(), tok)
	clock.Advance(2 * time.Second)
	errs := authtest.RunParallel(10, func(int) error { _, err := s.Token(context.Background()); return err })
	for _, err := range errs {
		if !errors.Is(err, authrefresh.ErrRefreshTransient) {
			t.Fatalf("got %v, want a transient error", err)
		}
	}
	none := authrefresh.NewSession(nil, nil, authrefresh.Options{Clock: clock.Now})
	_ = none.Login(context.Background(), tok)
	if _, err := none.Token(context.Background()); !errors.Is(err, authrefresh.ErrSessionExpired) {
		t.Fatalf("nil refresher: %v", err)
	}
}

// A plain error from a custom Refresher is a transient failure: the caller
// waits for the next attempt (two Refresher calls), and errors.Is sees
// ErrRefreshTransient.
func TestPlainRefresherErrorIsTransient(t *testing.T) {
	var calls atomic.Int32
	ref := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("connection refused by my custom client")
		}
		return &authrefresh.Token{AccessToken: "new-access-token", RefreshToken: "r2", Expiry: time.Now().Add(time.Hour)}, nil
	})
	s := authrefresh.NewSession(authrefresh.NewMemoryStore(&authrefresh.Token{AccessToken: "old-access-token", RefreshToken: "r1", Expiry: time.Now().Add(-time.Minute), IssuedAt: time.Now().Add(-time.Hour)}), ref, authrefresh.Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	tok, err := s.Token(context.Background())
	if err != nil || tok.AccessToken != "new-access-token" || calls.Load() != 2 {
		t.Fatalf("got %v, %v after %d refresher calls; want the new token after 2", tok, err, calls.Load())
	}
	bad := authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) { return nil, errors.New("plain") })
	s2 := authrefresh.NewSession(authrefresh.NewMemoryStore(&authrefresh.Token{AccessToken: "old-access-token", RefreshToken: "r1", Expiry: time.Now().Add(-time.Minute)}), bad, authrefresh.Options{BackoffWait: -1})
	if _, err := s2.Token(context.Background()); !errors.Is(err, authrefresh.ErrRefreshTransient) {
		t.Fatalf("plain error: errors.Is(err, ErrRefreshTransient) is false: %v", err)
	}
}
