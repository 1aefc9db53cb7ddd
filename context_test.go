package authrefresh_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// Per-request opt-outs: WithoutAuth sends no token; WithoutRefresh returns the
// refusal as it is.
func TestPerRequestOptOuts(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s}}
	req, _ := http.NewRequestWithContext(authrefresh.WithoutAuth(context.Background()), http.MethodGet, e.URL+"/api/v1/me", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="authrefresh"` {
		t.Fatalf("WithoutAuth: status %d challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	e.Auth.RevokeAccessTokens()
	req, _ = http.NewRequestWithContext(authrefresh.WithoutRefresh(context.Background()), http.MethodGet, e.URL+"/api/v1/me", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || e.Auth.Counters().Refreshes != 0 {
		t.Fatalf("WithoutRefresh: status %d, refreshes %d", resp.StatusCode, e.Auth.Counters().Refreshes)
	}
}
