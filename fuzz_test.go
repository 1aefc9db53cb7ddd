package authrefresh

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzDecodeClaims(f *testing.F) {
	f.Add(jwtWith(`{"exp":1800000002,"iat":1800000000}`))
	f.Add("a.b.c")
	f.Add(jwtWith(`{"exp":1e300}`))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeClaims(s)
		if err != nil && len(s) > 12 && strings.Contains(err.Error(), s) {
			t.Fatal("error quotes its input")
		}
		if err == nil && c.ExpiresAt.Year() > 5200 {
			t.Fatalf("absurd expiry %v", c.ExpiresAt)
		}
		// Dating a token by its claims never gives a lifetime that starts
		// in the future or after its end, stored or fresh.
		now := time.Unix(1_800_000_000, 0)
		for _, fresh := range []bool{false, true} {
			d := (&Token{AccessToken: s}).dated(now, fresh)
			if d.IssuedAt.After(now) || (!d.Expiry.IsZero() && d.IssuedAt.After(d.Expiry)) || d.ExpiresIn != 0 {
				t.Fatalf("fresh=%v: issued %v, expiry %v", fresh, d.IssuedAt, d.Expiry)
			}
			if st := d.staleAt(); !d.Expiry.IsZero() && (st.After(d.Expiry) || st.Before(d.IssuedAt)) {
				t.Fatalf("fresh=%v: stale at %v outside [%v, %v]", fresh, st, d.IssuedAt, d.Expiry)
			}
		}
	})
}

func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expires_in":60}`), "application/json")
	f.Add([]byte(`access_token=a&expires_in=1`), "application/x-www-form-urlencoded")
	f.Add([]byte(`{"accessToken":"a","expiresIn":"1e9"}`), "")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		tok, err := parseTokenResponse(body, ct, TokenFields{})
		if err == nil && tok.AccessToken == "" {
			t.Fatal("accepted a response without an access token")
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"error":"invalid product","details":{"price":"x"}}`))
	f.Add([]byte(`{"error_description":"d","error":"c"}`))
	f.Add([]byte("\x00\xff plain"))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, code, _ := parseErrorBody(body)
		desc, challenge := bearerChallenge(string(body))
		refused := refusalError("refresh", 400, http.Header{}, body).Error()
		for _, s := range []string{msg, code, desc, challenge, refused} {
			if !printable(s) {
				t.Fatalf("server text not cleaned: %q", s)
			}
		}
	})
}

func FuzzTokenFile(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expiry":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"access_token":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseTokenFile("/tmp/x.json", data, nil)
		if err == nil && tok != nil && tok.AccessToken == "" {
			t.Fatal("accepted a token file without an access token")
		}
	})
}

// The Client appends a plain relative path to its base URL as text; for any
// path it does so for, the result must be what url.ResolveReference gives.
func FuzzResolvePath(f *testing.F) {
	for _, p := range []string{"data", "/data", "a/b?x=1&y=2#frag", "a%2Fb", "a b", "./data", "../up", "a/../b", "x:y", "a/x:y", "?q", "#f", "", "..", "a/.", "%zz", "a;b=c", "@host", "//evil.example/x"} {
		f.Add("https://api.example.com/api/v1/", p)
	}
	f.Add("http://127.0.0.1:8080/", "me")
	f.Add("https://api.example.com/a%2Fb/", "c")
	f.Fuzz(func(t *testing.T, base, path string) {
		b, err := url.Parse(base)
		if err != nil || (b.Scheme != "http" && b.Scheme != "https") || b.Host == "" || !strings.HasSuffix(b.EscapedPath(), "/") {
			return
		}
		c := &Client{BaseURL: b}
		got, err := c.resolve(path)
		if err != nil {
			return
		}
		trimmed := strings.TrimLeft(path, "/")
		if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") || !plainBase(b) || !plainPath(trimmed) {
			return // the slow path is ResolveReference itself
		}
		ref, err := url.Parse(trimmed)
		if err != nil {
			// http.NewRequest will refuse the appended text too.
			if _, err := url.Parse(got); err == nil {
				t.Fatalf("%q + %q: ResolveReference's parse fails but the appended URL %q parses", base, path, got)
			}
			return
		}
		want := b.ResolveReference(ref)
		parsed, err := url.Parse(got)
		if err != nil {
			t.Fatalf("%q + %q: %q does not parse: %v", base, path, got, err)
		}
		if parsed.Scheme != want.Scheme || parsed.Host != want.Host || parsed.EscapedPath() != want.EscapedPath() || parsed.Path != want.Path || parsed.RawQuery != want.RawQuery {
			t.Fatalf("%q + %q: appended %q, ResolveReference %q", base, path, parsed, want)
		}
	})
}
