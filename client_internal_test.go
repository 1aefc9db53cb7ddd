package authrefresh

import (
	"net/url"
	"strings"
	"testing"
)

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
		got, _, err := c.resolve(path)
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
