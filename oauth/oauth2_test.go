package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/oauth"
	"golang.org/x/oauth2"
)

// x/oauth2's errors go through the same table as ours: 400
// temporarily_unavailable is transient, and Retry-After is kept.
func TestOAuth2TemporarilyUnavailableIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(400)
		w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	}))
	defer srv.Close()
	ref := oauth.ConfigRefresher(&oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}, nil)
	_, err := ref.Refresh(context.Background(), &authrefresh.Token{AccessToken: "a", RefreshToken: "r"})
	var re *authrefresh.RefreshError
	if !errors.As(err, &re) || re.Kind != authrefresh.RefreshTransient || re.RetryAfter != 7*time.Second {
		t.Fatalf("got %v (%+v); want transient, Retry-After 7s", err, re)
	}
}

// x/oauth2 interop both ways: a Config as our Refresher, a Session as its TokenSource.
func TestOAuth2Interop(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	cfg := &oauth2.Config{ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: e.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	ctx := context.Background()
	first, err := cfg.PasswordCredentialsToken(ctx, authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	s := authrefresh.NewSession(nil, oauth.ConfigRefresher(cfg, nil), authrefresh.Options{Clock: e.Clock.Now})
	if err := s.Login(ctx, &authrefresh.Token{AccessToken: first.AccessToken, RefreshToken: first.RefreshToken, IssuedAt: e.Clock.Now(), Expiry: e.Clock.Now().Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3 * time.Second)
	tok, err := s.TokenSource(ctx).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == first.AccessToken || tok.RefreshToken != "" {
		t.Fatal("TokenSource must give the refreshed token and never the refresh token")
	}
	// An SDK built on x/oauth2 uses the Session's token.
	hc := oauth2.NewClient(ctx, s.TokenSource(ctx))
	resp, err := hc.Get(e.URL + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || e.Auth.Counters().Refreshes != 1 {
		t.Fatalf("status %d refreshes %d", resp.StatusCode, e.Auth.Counters().Refreshes)
	}
	// A revoked refresh token is classified as rejected.
	e.Auth.RevokeRefreshToken(func() string { t, _ := s.Token(ctx); return t.RefreshToken }())
	if _, err := s.Refresh(ctx); !errors.Is(err, authrefresh.ErrSessionExpired) {
		t.Fatalf("after revocation: %v", err)
	}
}

// oauth.TokenFrom and Token.OAuth2 keep the lifetime right: an ExpiresIn is
// counted from when the Session takes the token in, and the refresh token
// never leaves through OAuth2.
func TestOAuth2Conversions(t *testing.T) {
	clock := fakeclock.New()
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{Clock: clock.Now})
	// x/oauth2 dated this token by the real clock, an hour off ours.
	ot := (&oauth2.Token{AccessToken: "access-token-1", RefreshToken: "refresh-1", Expiry: time.Now().Add(-time.Hour), ExpiresIn: 60}).
		WithExtra(map[string]any{"id_token": "id-1", "scope": "openid read"})
	in := oauth.TokenFrom(ot)
	if in.IDToken != "id-1" || in.Scope != "openid read" {
		t.Fatalf("id token and scope: %+v", in)
	}
	if err := s.Login(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Token(context.Background())
	if err != nil || !tok.Expiry.Equal(clock.Now().Add(time.Minute)) || tok.RefreshToken != "refresh-1" {
		t.Fatalf("got %v %v, want an expiry a minute after Login by the Session's clock", tok, err)
	}
	back := tok.OAuth2()
	if back.AccessToken != "access-token-1" || back.RefreshToken != "" || !back.Expiry.Equal(tok.Expiry) || back.Type() != "Bearer" {
		t.Fatalf("OAuth2(): %+v", back)
	}
}
