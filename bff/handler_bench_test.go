package bff_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/sidecar"
)

// answered is an API answering every call at once, in memory.
type answered struct{}

func (answered) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), ContentLength: 11, Request: r}, nil
}

// BenchmarkAPIHandler: the BFF's own work on an API call — the CSRF and
// origin checks, the session's lookup, the token attached, the answer
// copied — with an API that answers in memory (the network's part is
// BenchmarkAPIRoute's, in the browser module).
func BenchmarkAPIHandler(b *testing.B) {
	w := newWorld(b, memoryStores())
	w.cfg.Base = answered{}
	_, app := w.replicaOf(b, w.bffURL)
	req := w.apiRequest(b, "/api/me")
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

// BenchmarkAPIHandlerParallel: BenchmarkAPIHandler with 16 calls of one
// session at once, as a page's parallel calls: what they wait on each
// other (go test -mutexprofile shows it; the session table's read path
// takes no lock).
func BenchmarkAPIHandlerParallel(b *testing.B) {
	w := newWorld(b, memoryStores())
	w.cfg.Base = answered{}
	_, app := w.replicaOf(b, w.bffURL)
	req := w.apiRequest(b, "/api/me")
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			app.ServeHTTP(rec, req.Clone(req.Context()))
			if rec.Code != 200 {
				b.Error(rec.Code, rec.Body.String())
				return
			}
		}
	})
}

// BenchmarkAPIHop: the same browser's API call (its cookie, the CSRF
// header) through the BFF's handler and through the sidecar's, each to
// the same loopback API answering at once, with the same token: what the
// BFF costs beyond the sidecar on the same road (the sidecar has one
// session; the BFF finds the browser's).
func BenchmarkAPIHop(b *testing.B) {
	var token atomic.Value // the BFF's, that the sidecar sends the same
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token.CompareAndSwap(nil, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(api.Close)
	w := newWorld(b, memoryStores())
	w.cfg.APIs = []bff.API{{Prefix: "/api/", Upstream: api.URL + "/"}}
	_, app := w.replicaOf(b, w.bffURL)
	bffReq := w.apiRequest(b, "/api/me")
	if rec := httptest.NewRecorder(); serve(app, rec, bffReq) != 200 {
		b.Fatal(rec.Code, rec.Body.String())
	}
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: token.Load().(string)}); err != nil {
		b.Fatal(err)
	}
	up, _ := url.Parse(api.URL)
	// Logging as the command does with --quiet: refused and failed calls only.
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	side := sidecar.New(sidecar.Config{Session: s, Upstream: up, Logger: quiet, Guard: sidecar.Guard{Hosts: []string{"127.0.0.1:1"}}})
	sideReq := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/me", nil)
	sideReq.Header = bffReq.Header
	for _, hop := range []struct {
		name string
		h    http.Handler
		req  *http.Request
	}{
		{"bff", app, bffReq},
		{"sidecar", side, sideReq},
	} {
		b.Run(hop.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				rec := httptest.NewRecorder()
				hop.h.ServeHTTP(rec, hop.req)
				if rec.Code != 200 {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// apiRequest is a request of a newly logged-in browser to the BFF's path.
func (w *world) apiRequest(b testing.TB, path string) *http.Request {
	c := browser(b)
	w.login(b, c, "/")
	u, _ := url.Parse(w.bffURL)
	req := httptest.NewRequest(http.MethodGet, w.bffURL+path, nil)
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Cookie", "bff="+c.Jar.Cookies(u)[0].Value)
	return req
}

// serve has h answer req, and returns the status.
func serve(h http.Handler, rec *httptest.ResponseRecorder, req *http.Request) int {
	h.ServeHTTP(rec, req)
	return rec.Code
}
