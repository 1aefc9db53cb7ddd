package authrefresh_test

import (
	"context"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// Without refresh-ahead an expired token is still refreshed before sending.
func TestNoRefreshAheadStillRefreshesExpired(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{RefreshAhead: -1})
	c := e.Client(s)
	e.Clock.Advance(1900 * time.Millisecond)
	if err := c.Get(context.Background(), "me", nil); err != nil {
		t.Fatal(err)
	}
	if got := e.Auth.Counters(); got.Refreshes != 1 || got.Unauthorized401s() != 0 {
		t.Fatalf("refreshes=%d 401s=%d", got.Refreshes, got.Unauthorized401s())
	}
}
