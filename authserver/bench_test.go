package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkVerify is the cost of checking one access token, per algorithm.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			s, err := New(Config{Algorithm: alg, PasswordCost: 4, AccessTTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			token, err := s.issueAccess("demo", "", "", "", "", now)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.verifier.Verify(token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSign is the cost of issuing one access token, per algorithm.
func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			s, _ := New(Config{Algorithm: alg, PasswordCost: 4})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := s.issueAccess("demo", "", "", "fam", "", time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopbackClient is a keep-alive client sized for RunParallel.
func loopbackClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
}

// BenchmarkLoopbackProtectedGET: GET /api/v1/data over real loopback HTTP,
// load generator in the same process (it shares the 2 cores). Reports req/s.
func BenchmarkLoopbackProtectedGET(b *testing.B) {
	s, err := New(Config{PasswordCost: 4, AccessTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	hc := loopbackClient()
	defer hc.CloseIdleConnections()
	access, _ := login(b, hs.URL)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, hs.URL+"/api/v1/data?limit=1", nil)
			req.Header.Set("Authorization", "Bearer "+access)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkLoopbackRefresh: POST /auth/refresh over loopback, each goroutine
// rotating its own family. Reports refreshes/s.
func BenchmarkLoopbackRefresh(b *testing.B) {
	s, err := New(Config{PasswordCost: 4, LoginFailuresPerIP: -1, LoginFailuresPerUser: -1})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	hc := loopbackClient()
	defer hc.CloseIdleConnections()
	var failures atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		_, rt := login(b, hs.URL)
		for pb.Next() {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, hs.URL+"/auth/refresh", strings.NewReader(fmt.Sprintf(`{"refresh_token":%q}`, rt)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var out struct {
				RefreshToken string `json:"refresh_token"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failures.Add(1)
				return
			}
			rt = out.RefreshToken
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "refreshes/s")
	if failures.Load() > 0 || s.Counters().ReuseDetections > 0 {
		b.Fatalf("%d failures, %d reuse detections", failures.Load(), s.Counters().ReuseDetections)
	}
}
