package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/sidecar"
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
	tok, err := jsonauth.Login(context.Background(), nil, upstream.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		b.Fatal(err)
	}
	session := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: upstream.URL + "/auth/refresh"}, authrefresh.Options{})
	_ = session.Login(context.Background(), tok)
	target, _ := url.Parse(upstream.URL)
	proxy := startProxy(b, sidecar.Config{Session: session, Upstream: target, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

// BenchmarkSoak runs the demo's load for 60 s (1-s tokens, 32 workers) and
// reports the heap before and after, after a GC: memory must stay flat.
// Heavy: only with AUTHREFRESH_HEAVY=1.
//
//	AUTHREFRESH_HEAVY=1 go test -run '^$' -bench Soak -benchtime 1x ./cmd/authrefresh/
func BenchmarkSoak(b *testing.B) {
	if os.Getenv("AUTHREFRESH_HEAVY") != "1" {
		b.Skip("set AUTHREFRESH_HEAVY=1 for the 60-s soak")
	}
	heap := func() float64 {
		runtime.GC() // twice: the first only queues the finalizers of closed connections
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	for i := 0; i < b.N; i++ {
		// A short warm-up run first, so that one-time allocations (pools,
		// TLS of the runtime, code paths) are in the "before" figure.
		if _, err := demoRun(context.Background(), demoConfig{workers: 32, duration: 3 * time.Second, ttl: time.Second, refreshLatency: 20 * time.Millisecond}, false, io.Discard, false); err != nil {
			b.Fatal(err)
		}
		before := heap()
		r, err := demoRun(context.Background(), demoConfig{workers: 32, duration: 60 * time.Second, ttl: time.Second, refreshLatency: 20 * time.Millisecond}, false, io.Discard, false)
		if err != nil {
			b.Fatal(err)
		}
		after := heap()
		b.ReportMetric(before/1024, "heap-before-KiB")
		b.ReportMetric(after/1024, "heap-after-KiB")
		b.ReportMetric(float64(r.requests), "requests")
		b.ReportMetric(float64(r.failures), "failed")
		b.ReportMetric(float64(r.serverRefreshes), "refreshes")
	}
}
