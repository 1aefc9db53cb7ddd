package bff_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// answered is an API answering every call at once, in memory.
type answered struct{}

func (answered) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), ContentLength: 11, Request: r}, nil
}

// BenchmarkAPIHandler: the BFF's own work on an API call — the CSRF and
// origin checks, the session's lookup, the token attached, the reverse
// proxy's copying — with an API that answers in memory (the network's
// part is BenchmarkAPIRoute's, in the browser module).
func BenchmarkAPIHandler(b *testing.B) {
	w := newWorld(b, memoryStores())
	w.cfg.Base = answered{}
	_, app := w.replicaOf(b, w.bffURL)
	c := browser(b)
	w.login(b, c, "/")
	u, _ := url.Parse(w.bffURL)
	id := c.Jar.Cookies(u)[0].Value
	req := httptest.NewRequest(http.MethodGet, w.bffURL+"/api/me", nil)
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Cookie", "bff="+id)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
