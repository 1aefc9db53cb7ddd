package authrefresh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/naive"
)

// BenchmarkTailLatencyAcrossExpiry: 16 goroutines of steady traffic for 6 s
// of 1-s tokens over loopback, the server taking 50 ms per refresh. Requests
// are grouped in 100-ms windows; windows within 100 ms after a token's
// server-side expiry are "expiry windows". Reports p50/p99 of both kinds and
// the p99 ratio, for authrefresh (refresh-ahead) and the seed-002 queue
// (reactive: refresh after a 401).
//
//	go test -run '^$' -bench TailLatency -benchtime 1x .
func BenchmarkTailLatencyAcrossExpiry(b *testing.B) {
	for _, peer := range []string{"authrefresh", "seed-002"} {
		b.Run(peer, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tailLatency(b, peer)
			}
		})
	}
}

func tailLatency(b *testing.B, peer string) {
	srv, err := authserver.New(authserver.Config{AccessTTL: time.Second, PasswordCost: 4})
	if err != nil {
		b.Fatal(err)
	}
	srv.SetRefreshLatency(50 * time.Millisecond)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	conns := &http.Transport{MaxIdleConnsPerHost: 64}
	defer conns.CloseIdleConnections()
	tok, err := authrefresh.PasswordLogin(context.Background(), &http.Client{Transport: conns}, hs.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		b.Fatal(err)
	}
	var expiries sync.Map // server-side exp of every token issued → struct{}
	note := func(access string) {
		if c, err := authrefresh.DecodeClaims(access); err == nil {
			expiries.Store(c.ExpiresAt.UnixNano(), struct{}{})
		}
	}
	note(tok.AccessToken)
	// Both peers refresh through base, which notes every token issued.
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := conns.RoundTrip(r)
		if err == nil && r.URL.Path == "/auth/refresh" && resp.StatusCode == 200 {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.Unmarshal(data, &out)
			note(out.AccessToken)
			resp.Body = io.NopCloser(bytes.NewReader(data))
		}
		return resp, err
	})
	var rt http.RoundTripper
	switch peer {
	case "authrefresh":
		s := authrefresh.NewSession(nil, &authrefresh.JSONRefresher{URL: hs.URL + "/auth/refresh", HTTPClient: &http.Client{Transport: base}}, authrefresh.Options{})
		_ = s.Login(context.Background(), tok)
		rt = &authrefresh.Transport{Session: s, Base: base}
	default:
		q := &naive.Queued{Interceptor: naive.Interceptor{RefreshURL: hs.URL + "/auth/refresh", Base: base}}
		q.SetTokens(tok.AccessToken, tok.RefreshToken)
		rt = q
	}
	client := &http.Client{Transport: rt}
	type sample struct {
		at  time.Time
		lat time.Duration
	}
	var mu sync.Mutex
	var samples []sample
	var failures int
	deadline := time.Now().Add(6 * time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				began := time.Now()
				resp, err := client.Get(hs.URL + "/api/v1/me")
				ok := err == nil && resp.StatusCode == 200
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				samples = append(samples, sample{began, time.Since(began)})
				if !ok {
					failures++
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // steady traffic: ~16 × 150 req/s
			}
		}()
	}
	wg.Wait()
	var exp []int64
	expiries.Range(func(k, _ any) bool { exp = append(exp, k.(int64)); return true })
	slices.Sort(exp)
	nearExpiry := func(t time.Time) bool {
		for _, e := range exp {
			if d := t.UnixNano() - e; d >= -int64(50*time.Millisecond) && d < int64(150*time.Millisecond) {
				return true
			}
		}
		return false
	}
	var inExp, outExp []time.Duration
	for _, s := range samples {
		if nearExpiry(s.at) {
			inExp = append(inExp, s.lat)
		} else {
			outExp = append(outExp, s.lat)
		}
	}
	pct := func(d []time.Duration, q float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[min(len(d)-1, int(q*float64(len(d))))]
	}
	p99in, p99out := pct(inExp, 0.99), pct(outExp, 0.99)
	b.ReportMetric(float64(pct(outExp, 0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99out.Microseconds()), "p99-µs")
	b.ReportMetric(float64(pct(inExp, 0.5).Microseconds()), "p50-expiry-µs")
	b.ReportMetric(float64(p99in.Microseconds()), "p99-expiry-µs")
	if p99out > 0 {
		b.ReportMetric(float64(p99in)/float64(p99out), "p99-ratio")
	}
	b.ReportMetric(float64(srv.Counters().Unauthorized401s()), "401s")
	b.ReportMetric(float64(failures), "failed")
}
