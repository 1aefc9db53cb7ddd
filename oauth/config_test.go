package oauth_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/oauth"
	"golang.org/x/oauth2"
)

// The RFC 6749 refresher against /oauth/token, with Basic and body client auth.
func TestConfigBothClientAuths(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	ctx := context.Background()
	for _, auth := range []oauth.ClientAuth{oauth.ClientAuthBasic, oauth.ClientAuthBody} {
		r := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, ClientAuth: auth, RevocationURL: e.URL + "/oauth/revoke"}
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
	bad := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: "wrong"}
	if _, err := bad.Refresh(ctx, &authrefresh.Token{RefreshToken: "x"}); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) {
		t.Fatalf("bad client: %v", err)
	}
}

// A wrong client secret is the client's configuration, not the token's
// death: the session is kept, the store still holds the refresh token, and
// once the secret is fixed the next attempt (after the backoff) refreshes
// with it.
func TestMisconfiguredClientKeepsTheSession(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Minute})
	ctx := context.Background()
	cfg := &oauth2.Config{ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Endpoint: oauth2.Endpoint{TokenURL: e.URL + "/oauth/token"}}
	first, err := cfg.PasswordCredentialsToken(ctx, authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	var secret atomic.Value
	secret.Store("rotated-away")
	refresher := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		r := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: secret.Load().(string)}
		return r.Refresh(ctx, tok)
	})
	store := authrefresh.NewMemoryStore(nil)
	s := authrefresh.NewSession(store, refresher, authrefresh.Options{Clock: e.Clock.Now, BackoffWait: -1})
	if err := s.Login(ctx, &authrefresh.Token{AccessToken: first.AccessToken, RefreshToken: first.RefreshToken, ExpiresIn: time.Minute}); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Minute)
	_, err = s.Token(ctx)
	if !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || errors.Is(err, authrefresh.ErrSessionExpired) || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong secret: %v; want a misconfiguration, the session kept", err)
	}
	if stored, _ := store.Load(ctx); stored == nil || stored.RefreshToken != first.RefreshToken {
		t.Fatalf("the store lost the refresh token: %v", stored)
	}
	secret.Store(authserver.DemoClientSecret) // fixed
	e.Clock.Advance(time.Hour)                // past the longest backoff
	if tok, err := s.Token(ctx); err != nil || tok.AccessToken == first.AccessToken {
		t.Fatalf("after the fix: %v %v", tok, err)
	}
	if e.Auth.Counters().Refreshes != 1 {
		t.Fatalf("server refreshes %d, want 1", e.Auth.Counters().Refreshes)
	}
}
