package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
)

// BenchmarkSidecar: the same load generator (keep-alive, 8×GOMAXPROCS
// goroutines) against the upstream directly with a fixed token, and through
// `authrefresh proxy`. Reports req/s; everything shares the 2 cores.
func BenchmarkSidecar(b *testing.B) {
	srv, err := authserver.New(authserver.Config{AccessTTL: time.Hour, PasswordCost: 4})
	if err != nil {
		b.Fatal(err)
	}
	upstream := httptest.NewServer(srv)
	defer upstream.Close()
	tok, err := authrefresh.PasswordLogin(context.Background(), nil, upstream.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		b.Fatal(err)
	}
	session := authrefresh.NewSession(nil, &authrefresh.JSONRefresher{URL: upstream.URL + "/auth/refresh"}, authrefresh.Options{})
	_ = session.Login(context.Background(), tok)
	target, _ := url.Parse(upstream.URL)
	proxy := httptest.NewServer(newProxy(session, target, 1<<20, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer proxy.Close()

	parallelism := 8
	load := func(b *testing.B, base string, auth string) {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		defer hc.CloseIdleConnections()
		b.SetParallelism(parallelism)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me", nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	}
	// CPU-bound: the upstream answers at once, so the proxy's own hop
	// competes with the upstream and the load generator for the 2 cores.
	srv.SetAPILatency(0)
	parallelism = 8
	b.Run("cpu-bound/direct", func(b *testing.B) { load(b, upstream.URL, "Bearer "+tok.AccessToken) })
	b.Run("cpu-bound/via-proxy", func(b *testing.B) { load(b, proxy.URL, "") })
	// Latency-bound: an upstream that takes 2 ms per request, as real APIs do.
	srv.SetAPILatency(2 * time.Millisecond)
	parallelism = 32
	b.Run("2ms-upstream/direct", func(b *testing.B) { load(b, upstream.URL, "Bearer "+tok.AccessToken) })
	b.Run("2ms-upstream/via-proxy", func(b *testing.B) { load(b, proxy.URL, "") })
}
