package authrefresh_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"golang.org/x/oauth2"
)

// An SDK that authenticates with Session.TokenSource cannot replay, and on its
// own keeps presenting a token the server revoked until it expires. With its
// base RoundTripper wrapped by ReportRefusals, the refusal renews the shared
// token: the refused request fails, the next one (of any user of the
// Session) carries the new token.
func TestTokenSourceRecoversWithReportRefusals(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Hour})
	ctx := context.Background()
	s := e.Session(nil, authrefresh.Options{})
	get := func(c *http.Client) int {
		t.Helper()
		resp, err := c.Get(e.URL + "/api/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	plain := &http.Client{Transport: &oauth2.Transport{Source: s.TokenSource(ctx)}}
	if got := get(plain); got != 200 {
		t.Fatalf("before the revocation: %d", got)
	}
	e.Auth.RevokeAccessTokens()
	for i := 0; i < 3; i++ {
		if got := get(plain); got != 401 {
			t.Fatalf("plain TokenSource after a revocation: %d; the documented limit is 401 until expiry", got)
		}
	}
	reporting := &http.Client{Transport: &oauth2.Transport{Source: s.TokenSource(ctx), Base: s.ReportRefusals(nil)}}
	if got := get(reporting); got != 401 {
		t.Fatalf("the refused request itself: %d, want 401 (nothing replays it)", got)
	}
	if got, again := get(reporting), get(plain); got != 200 || again != 200 {
		t.Fatalf("after the reported refusal: %d and %d, want 200 for every user of the Session", got, again)
	}
	if st := s.Stats(); st.Refreshes != 1 || st.Refusals != 1 || e.Auth.Counters().Refreshes != 1 {
		t.Fatalf("stats %+v, server refreshes %d; want exactly one refresh", st, e.Auth.Counters().Refreshes)
	}
}

// A DPoP-bound token is not handed to x/oauth2, which would send it
// without a proof.
func TestTokenSourceRefusesDPoPToken(t *testing.T) {
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "bound", TokenType: "DPoP", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.TokenSource(context.Background()).Token(); !errors.Is(err, authrefresh.ErrNoProver) || tok != nil {
		t.Fatalf("got %v %v", tok, err)
	}
}
