package authrefresh

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestParseTokenResponse(t *testing.T) {
	tok, err := parseTokenResponse([]byte(`{"accessToken":"a","refreshToken":"r","expires_in":"60"}`), "application/json", TokenFields{})
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" || tok.ExpiresIn != time.Minute {
		t.Fatalf("%v %v", tok, err)
	}
	tok, err = parseTokenResponse([]byte(`access_token=a&token_type=bearer&expires_in=5`), "application/x-www-form-urlencoded", TokenFields{})
	if err != nil || tok.AccessToken != "a" || tok.AuthorizationHeader() != "Bearer a" {
		t.Fatalf("form: %v %v", tok, err)
	}
	tok, err = parseTokenResponse([]byte(`{"jwt":"a","rt":"r"}`), "", TokenFields{AccessToken: "jwt", RefreshToken: "rt"})
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" {
		t.Fatalf("custom fields: %v %v", tok, err)
	}
	for _, bad := range []string{``, `null`, `[]`, `{}`, `{"access_token":1}`, `{"access_token":"a","expires_in":-5}`, `{"access_token":"a","expires_in":{}}`} {
		if _, err := parseTokenResponse([]byte(bad), "application/json", TokenFields{}); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// No token endpoint follows a redirect, whatever HTTPClient the caller gave:
// a 307 to another origin would carry the refresh token and the client
// secret there. The other origin's handler records what reached it.
func TestTokenEndpointsNeverFollowRedirects(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"attacker-token","expires_in":3600}`))
	}))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	callers := &http.Client{Timeout: 5 * time.Second} // follows redirects by default
	tok := &Token{AccessToken: "access-token-1", RefreshToken: "refresh-token-1"}
	ctx := context.Background()
	calls := map[string]func() error{
		"JSON refresh": func() error {
			_, err := (&JSONRefresher{URL: redirecting.URL, HTTPClient: callers}).Refresh(ctx, tok)
			return err
		},
		"JSON logout": func() error {
			return (&JSONRefresher{LogoutURL: redirecting.URL, HTTPClient: callers}).Revoke(ctx, tok)
		},
		"OAuth2 refresh": func() error {
			_, err := (&OAuth2Refresher{TokenURL: redirecting.URL, ClientID: "c", ClientSecret: "client-secret", HTTPClient: callers}).Refresh(ctx, tok)
			return err
		},
		"OAuth2 revoke": func() error {
			return (&OAuth2Refresher{RevocationURL: redirecting.URL, ClientID: "c", ClientSecret: "client-secret", HTTPClient: callers}).Revoke(ctx, tok)
		},
		"x/oauth2 refresh": func() error {
			cfg := &oauth2.Config{ClientID: "c", ClientSecret: "client-secret", Endpoint: oauth2.Endpoint{TokenURL: redirecting.URL}}
			_, err := OAuth2ConfigRefresher(cfg, callers).Refresh(ctx, tok)
			return err
		},
		"password login": func() error {
			_, err := PasswordLogin(ctx, callers, redirecting.URL, "user", "password")
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%s: %v; want an error naming the redirect", name, err)
		}
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("%d requests reached the redirect's target", n)
	}
	if callers.CheckRedirect != nil {
		t.Fatal("the caller's client was modified")
	}
}
