package authrefresh_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"golang.org/x/oauth2"
)

// The RFC 6749 refresher against /oauth/token, with Basic and body client auth.
func TestOAuth2RefresherBothClientAuths(t *testing.T) {
	e := newEnv(t, authserver.Config{})
	ctx := context.Background()
	for _, auth := range []authrefresh.ClientAuth{authrefresh.ClientAuthBasic, authrefresh.ClientAuthBody} {
		r := &authrefresh.OAuth2Refresher{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, ClientAuth: auth, RevocationURL: e.URL + "/oauth/revoke"}
		cfg := &oauth2.Config{ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Endpoint: oauth2.Endpoint{TokenURL: r.TokenURL}}
		first, err := cfg.PasswordCredentialsToken(ctx, authserver.DemoUser, authserver.DemoPassword)
		if err != nil {
			t.Fatal(err)
		}
		next, err := r.Refresh(ctx, &authrefresh.Token{AccessToken: first.AccessToken, RefreshToken: first.RefreshToken})
		if err != nil || next.RefreshToken == first.RefreshToken {
			t.Fatalf("auth %d: %v (rotation expected)", auth, err)
		}
		if err := r.Revoke(ctx, next); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Refresh(ctx, next); !errors.Is(err, authrefresh.ErrRefreshRejected) {
			t.Fatalf("after revoke: %v", err)
		}
	}
	bad := &authrefresh.OAuth2Refresher{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: "wrong"}
	if _, err := bad.Refresh(ctx, &authrefresh.Token{RefreshToken: "x"}); !errors.Is(err, authrefresh.ErrRefreshRejected) {
		t.Fatalf("bad client: %v", err)
	}
}
