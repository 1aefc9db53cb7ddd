package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/jwtclaims"
	"github.com/authrefresh/authrefresh/jsonauth"
)

// Steady traffic across token expiries: SteadyWorkers goroutines each send a
// request, pause SteadyPause, and repeat for SteadyDuration, against the
// reference server with 1-s tokens and SteadyRefreshLatency per refresh.
const (
	SteadyWorkers        = 16
	SteadyPause          = 5 * time.Millisecond
	SteadyDuration       = 6 * time.Second
	SteadyRefreshLatency = 50 * time.Millisecond
)

// Requests that start between ExpiryWindowBefore before and ExpiryWindowAfter
// after a token's server-side expiry are in an "expiry window".
const (
	ExpiryWindowBefore = 50 * time.Millisecond
	ExpiryWindowAfter  = 150 * time.Millisecond
)

// Steady is the tail-latency scenario: latency of requests in expiry windows
// against the others.
type Steady struct {
	Server *authserver.Server
	// URL is the server's base URL.
	URL string
	// Base sends to the server and notes the expiry of every access token a
	// refresh through it returns: Go peers refresh through it.
	Base http.RoundTripper
	// Login is the demo user's first token pair.
	Login *authrefresh.Token

	mu       sync.Mutex
	expiries []time.Time
}

// NewSteady starts the server and logs in. Everything stops when tb ends.
func NewSteady(tb testing.TB) *Steady {
	tb.Helper()
	as := authtest.StartRealClock(tb, authserver.Config{AccessTTL: time.Second})
	srv, hs := as.Auth, as.HTTP
	srv.SetRefreshLatency(SteadyRefreshLatency)
	conns := &http.Transport{MaxIdleConnsPerHost: 64}
	tb.Cleanup(conns.CloseIdleConnections)
	tok, err := jsonauth.Login(context.Background(), &http.Client{Transport: conns}, hs.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Steady{Server: srv, URL: hs.URL, Login: tok}
	s.NoteToken(tok.AccessToken)
	s.Base = notingTransport{s: s, base: conns}
	return s
}

// NoteToken records the server-side expiry of an access token.
func (s *Steady) NoteToken(access string) {
	if c, err := jwtclaims.Decode(access); err == nil && !c.ExpiresAt.IsZero() {
		s.NoteExpiry(c.ExpiresAt)
	}
}

// NoteExpiry records the server-side expiry of a token that a peer outside
// this process obtained.
func (s *Steady) NoteExpiry(t time.Time) {
	s.mu.Lock()
	s.expiries = append(s.expiries, t)
	s.mu.Unlock()
}

// notingTransport notes every access token a refresh returns.
type notingTransport struct {
	s    *Steady
	base http.RoundTripper
}

func (n notingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := n.base.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK || (r.URL.Path != "/auth/refresh" && r.URL.Path != "/oauth/token") {
		return resp, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(data, &out) == nil {
		n.s.NoteToken(out.AccessToken)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}

// Sample is one request: when it started and how long it took.
type Sample struct {
	At      time.Time
	Latency time.Duration
	Failed  bool
}

// Run drives send (one request; an error is a failure) from SteadyWorkers
// goroutines for SteadyDuration and judges the samples.
func (s *Steady) Run(send func() error) TailResult {
	var mu sync.Mutex
	var samples []Sample
	deadline := time.Now().Add(SteadyDuration)
	var wg sync.WaitGroup
	for range SteadyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				began := time.Now()
				err := send()
				sm := Sample{At: began, Latency: time.Since(began), Failed: err != nil}
				mu.Lock()
				samples = append(samples, sm)
				mu.Unlock()
				time.Sleep(SteadyPause) // the load's shape, not synchronisation
			}
		}()
	}
	wg.Wait()
	return s.Judge(samples)
}

// TailResult is p50/p99 in and outside expiry windows, with what the server
// refused and what failed.
type TailResult struct {
	Requests                 int
	P50, P99                 time.Duration // outside expiry windows
	P50Expiry, P99Expiry     time.Duration // in expiry windows
	Unauthorized, Failed     uint64
	Refreshes, ForcedLogouts uint64
}

// Judge sorts samples into expiry windows (by the expiries noted) and
// reads the server's counters.
func (s *Steady) Judge(samples []Sample) TailResult {
	s.mu.Lock()
	exp := slices.Clone(s.expiries)
	s.mu.Unlock()
	slices.SortFunc(exp, func(a, b time.Time) int { return a.Compare(b) })
	exp = slices.CompactFunc(exp, func(a, b time.Time) bool { return a.Equal(b) })
	inWindow := func(t time.Time) bool {
		for _, e := range exp {
			if d := t.Sub(e); d >= -ExpiryWindowBefore && d < ExpiryWindowAfter {
				return true
			}
		}
		return false
	}
	var in, out []time.Duration
	var failed uint64
	for _, sm := range samples {
		if sm.Failed {
			failed++
		}
		if inWindow(sm.At) {
			in = append(in, sm.Latency)
		} else {
			out = append(out, sm.Latency)
		}
	}
	c := s.Server.Counters()
	return TailResult{
		Requests: len(samples),
		P50:      percentile(out, 0.50), P99: percentile(out, 0.99),
		P50Expiry: percentile(in, 0.50), P99Expiry: percentile(in, 0.99),
		Unauthorized: c.Unauthorized401s(), Failed: failed,
		Refreshes: c.Refreshes, ForcedLogouts: c.ReuseDetections,
	}
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// Report records r as the benchmark's custom metrics.
func (r TailResult) Report(b *testing.B) {
	b.ReportMetric(float64(r.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(r.P50Expiry.Microseconds()), "p50-expiry-µs")
	b.ReportMetric(float64(r.P99Expiry.Microseconds()), "p99-expiry-µs")
	if r.P99 > 0 {
		b.ReportMetric(float64(r.P99Expiry)/float64(r.P99), "p99-ratio")
	}
	b.ReportMetric(float64(r.Unauthorized), "401s")
	b.ReportMetric(float64(r.Failed), "failed")
	b.ReportMetric(float64(r.Refreshes), "refreshes")
	b.ReportMetric(float64(r.ForcedLogouts), "forced-logouts")
	b.ReportMetric(float64(r.Requests), "requests")
}
