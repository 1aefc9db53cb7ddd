package bff

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh/oauth"
)

// A return URL is accepted only as a path on this site, whatever a
// browser would make of it.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/orders?page=2", "//evil.example", "/\\evil", "https://evil.example", "/%2F%2Fevil", "/a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, ok := localPath(raw)
		if !ok {
			return
		}
		u, err := url.Parse(p)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
			strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/\\") || strings.ContainsAny(p, " \t\r\n") {
			t.Fatalf("%q accepted as %q", raw, p)
		}
		// What a browser resolves against the site stays on the site.
		base, _ := url.Parse("https://app.example/")
		if r := base.ResolveReference(u); r.Host != "app.example" {
			t.Fatalf("%q resolves to %q", raw, r.String())
		}
	})
}

// Whatever a callback carries (a query, cookies), the BFF answers 4xx
// without reaching the provider, never 5xx, never a panic.
func FuzzCallback(f *testing.F) {
	f.Add("code=x&state=y", "y")
	f.Add("error=access_denied&state=", "")
	f.Add("state=%00", "\x00")
	b, err := New(Config{Provider: &oauth.ProviderMetadata{AuthorizationEndpoint: "http://127.0.0.1:1/a", TokenEndpoint: "http://127.0.0.1:1/t"},
		Client: oauth.Config{ClientID: "c"}, URL: "http://127.0.0.1:8080"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/bff/callback", nil)
		r.URL.RawQuery = query
		r.Header.Set("Cookie", "bff-login="+cookie+"; bff="+cookie)
		w := httptest.NewRecorder()
		b.ServeHTTP(w, r)
		if w.Code < 400 || w.Code >= 500 {
			t.Fatalf("callback ?%q with cookie %q: %d", query, cookie, w.Code)
		}
	})
}

// Whatever arrives as a logout token, it is refused with a reason and
// nothing panics. (The endpoint answers such a refusal 400: TestBackchannelLogout.
// The whole handler is not fuzzed here: net/http's form parsing makes the
// engine spend its time minimizing inputs instead of running them.)
func FuzzBackchannelLogout(f *testing.F) {
	f.Add("eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.e30.c2ln")
	f.Add("a.b.c")
	f.Add("")
	b, err := New(Config{Provider: &oauth.ProviderMetadata{Issuer: "http://127.0.0.1:1", AuthorizationEndpoint: "http://127.0.0.1:1/a", TokenEndpoint: "http://127.0.0.1:1/t"},
		Client: oauth.Config{ClientID: "c"}, URL: "http://127.0.0.1:8080", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if claims, err := b.verifyLogoutToken(context.Background(), token); err == nil || claims != nil {
			t.Fatalf("logout_token %q accepted", token)
		}
	})
}

// The session's cookie is read as net/http reads it: whatever the Cookie
// header, a value the BFF could have set (base64url) that cookieValue finds
// is the one r.Cookie finds, and one r.Cookie finds is found.
func FuzzCookieValue(f *testing.F) {
	f.Add("bff=abc; bff-login=def")
	f.Add("bff-login=def; bff=abc")
	f.Add(`x="y"; bff = abc;bff=ghi`)
	f.Add("bff=\"abc\"")
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", header)
		v, found := cookieValue(r, "bff")
		c, err := r.Cookie("bff")
		setByUs := func(s string) bool {
			return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
		}
		if found && setByUs(v) && (err != nil || c.Value != v) {
			t.Fatalf("%q: cookieValue %q, r.Cookie %v %v", header, v, c, err)
		}
		if err == nil && setByUs(c.Value) && (!found || v != c.Value) {
			t.Fatalf("%q: r.Cookie %q, cookieValue %q %v", header, c.Value, v, found)
		}
	})
}
