package oauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/oauth"
)

// browse is a headless browser: it follows the authorization URL's
// redirects to the loopback listener and returns the page it shows.
func browse(t *testing.T, authURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(authURL)
	if err != nil {
		t.Errorf("browsing: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func browserLogin(e *authtest.Server, public bool) *oauth.BrowserLogin {
	c := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Scopes: []string{"openid", "read"}}
	if public {
		c.ClientID, c.ClientSecret = "cli", ""
	}
	return &oauth.BrowserLogin{Client: c, AuthURL: e.URL + "/oauth/authorize", Issuer: e.URL}
}

// A browser login: PKCE and state sent, the code exchanged once, an ID
// token with the nonce, and the token then refreshes like any other.
func TestBrowserLogin(t *testing.T) {
	for _, public := range []bool{false, true} {
		e := authtest.Start(t, authserver.Config{Issuer: "", AutoApproveUser: authserver.DemoUser, Clients: map[string]string{authserver.DemoClientID: authserver.DemoClientSecret, "cli": ""}})
		b := browserLogin(e, public)
		b.Issuer = "" // the server's issuer is "authrefresh", not a URL
		var sent url.Values
		b.Open = func(_ context.Context, u string) error {
			parsed, _ := url.Parse(u)
			sent = parsed.Query()
			status, body := browse(t, u)
			if status != 200 || !strings.Contains(body, "Logged in") {
				t.Errorf("page: %d %s", status, body)
			}
			return nil
		}
		tok, err := b.Login(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sent.Get("code_challenge_method") != "S256" || len(sent.Get("code_challenge")) != 43 || len(sent.Get("state")) < 20 || sent.Get("nonce") == "" ||
			!strings.HasPrefix(sent.Get("redirect_uri"), "http://127.0.0.1:") || sent.Get("scope") != "openid read" {
			t.Fatalf("authorization request: %v", sent)
		}
		if tok.RefreshToken == "" || tok.IDToken == "" || tok.Scope != "openid read" || tok.ExpiresIn <= 0 {
			t.Fatalf("token: %+v", tok)
		}
		if c := e.Auth.Counters(); c.Authorizations != 1 {
			t.Fatalf("authorizations: %d", c.Authorizations)
		}
		s := authrefresh.NewSession(authrefresh.NewMemoryStore(nil), b.Client, authrefresh.Options{Clock: e.Clock.Now})
		if err := s.Login(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		got, err := s.Refresh(context.Background())
		if err != nil || got.AccessToken == tok.AccessToken || got.IDToken != tok.IDToken {
			t.Fatalf("refresh after a browser login: %v, %v (the ID token is kept)", got, err)
		}
	}
}

// What comes back on the redirect is checked before any code is exchanged.
func TestBrowserLoginRefusals(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	redirectWith := func(change func(q url.Values)) func(context.Context, string) error {
		return func(_ context.Context, u string) error {
			parsed, _ := url.Parse(u)
			q := parsed.Query()
			back := url.Values{"code": {"some-code"}, "state": {q.Get("state")}}
			change(back)
			status, body := browse(t, q.Get("redirect_uri")+"?"+back.Encode())
			if status != http.StatusBadRequest || !strings.Contains(body, "Login failed") {
				t.Errorf("page: %d %s", status, body)
			}
			return nil
		}
	}
	for name, tc := range map[string]struct {
		open     func(context.Context, string) error
		issuer   string
		wantCode string
	}{
		"error":  {open: redirectWith(func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") }), wantCode: "access_denied"},
		"issuer": {open: redirectWith(func(q url.Values) { q.Set("iss", "https://evil.example") }), issuer: "https://good.example", wantCode: "issuer_mismatch"},
		"empty":  {open: redirectWith(func(q url.Values) { q.Del("code") }), wantCode: "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			b := browserLogin(e, false)
			b.Open, b.Issuer = tc.open, tc.issuer
			_, err := b.Login(context.Background())
			var ae *oauth.AuthorizationError
			if !errors.As(err, &ae) || ae.Code != tc.wantCode || ae.Flow != "browser" {
				t.Fatalf("got %v, want %s", err, tc.wantCode)
			}
			if n := e.Auth.Counters().Requests["/oauth/token"]; n != 0 {
				t.Fatalf("%d code exchanges for a refused redirect", n)
			}
		})
	}
}

// Any local process can reach the loopback listener: redirects without the
// login's state (a forged code, a forged error, none at all) are answered
// and ignored, and the login ends with the browser's own redirect.
func TestBrowserLoginIgnoresForeignRedirects(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	b := browserLogin(e, false)
	b.Issuer = ""
	b.Open = func(_ context.Context, u string) error {
		parsed, _ := url.Parse(u)
		redirect := parsed.Query().Get("redirect_uri")
		for _, forged := range []url.Values{
			{"code": {"attacker-code"}, "state": {"forged"}},
			{"error": {"access_denied"}, "state": {"forged"}},
			{"code": {"attacker-code"}},
			{},
		} {
			if status, body := browse(t, redirect+"?"+forged.Encode()); status != http.StatusBadRequest || !strings.Contains(body, "Not this login") {
				t.Errorf("forged redirect %v: %d %s", forged, status, body)
			}
		}
		if status, body := browse(t, u); status != 200 || !strings.Contains(body, "Logged in") {
			t.Errorf("the browser's own redirect: %d %s", status, body)
		}
		return nil
	}
	tok, err := b.Login(context.Background())
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("login after forged redirects: %v", err)
	}
	if n := e.Auth.Counters().Requests["/oauth/token"]; n != 1 {
		t.Fatalf("%d code exchanges, want 1 (the forged codes are never sent)", n)
	}
}

// A provider that approves no one, a wrong client secret, a redirect host
// that is not loopback, no answer in time: each a clear error, no hang.
func TestBrowserLoginFailures(t *testing.T) {
	e := authtest.Start(t, authserver.Config{}) // AutoApproveUser unset: access_denied
	follow := func(_ context.Context, u string) error { browse(t, u); return nil }

	b := browserLogin(e, false)
	b.Open, b.Issuer = follow, ""
	var ae *oauth.AuthorizationError
	if _, err := b.Login(context.Background()); !errors.As(err, &ae) || ae.Code != "access_denied" || !strings.Contains(err.Error(), "approves no one") {
		t.Fatalf("denied: %v", err)
	}

	e2 := authtest.Start(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	b = browserLogin(e2, false)
	b.Open, b.Issuer, b.Client.ClientSecret = follow, "", "wrong"
	if _, err := b.Login(context.Background()); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) {
		t.Fatalf("wrong secret: %v", err)
	}

	b = browserLogin(e2, false)
	b.Open, b.RedirectURL = follow, "http://example.com/callback"
	if _, err := b.Login(context.Background()); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("remote redirect: %v", err)
	}

	b = browserLogin(e2, false)
	b.Open, b.Timeout = func(context.Context, string) error { return nil }, 1 // nobody comes back
	if _, err := b.Login(context.Background()); !errors.As(err, &ae) || ae.Code != "timeout" {
		t.Fatalf("timeout: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	b.Open, b.Timeout = func(context.Context, string) error { cancel(); return nil }, 0
	if _, err := b.Login(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// A fixed redirect URI (a provider that demands one) is listened on as
// given, localhost as 127.0.0.1.
func TestBrowserLoginFixedRedirect(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	b := browserLogin(e, false)
	b.Issuer = ""
	b.RedirectURL = "http://localhost/oauth/done"
	b.Open = func(_ context.Context, u string) error {
		parsed, _ := url.Parse(u)
		ru, _ := url.Parse(parsed.Query().Get("redirect_uri"))
		if ru.Hostname() != "localhost" || ru.Path != "/oauth/done" || ru.Port() == "" {
			t.Errorf("redirect_uri %s", ru)
		}
		browse(t, u)
		return nil
	}
	if _, err := b.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
}
