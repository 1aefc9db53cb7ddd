// Package scenario holds the measured situations shared by the benchmarks
// of the root package and of the peers module, so that every client is
// measured in exactly the same one: Amplification (N requests at one expiry)
// and Steady (tail latency across expiries under steady traffic). What each
// client did is read from the reference server's own counters and clocks, not
// from the client's account of itself.
package scenario

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/jwtclaims"
	"golang.org/x/oauth2"
)

// Amplification is N requests sent at the same instant just after the access
// token expired, against the reference server with rotation and reuse
// detection on (real clock, 1-s tokens): a reference server on loopback and
// one login whose access token is about to expire. Go peers send through
// Base; others use URL.
type Amplification struct {
	Server *authserver.Server
	// URL is the server's base URL ("http://127.0.0.1:PORT").
	URL string
	// Base is a keep-alive transport with room for 256 connections to the
	// server, closed with the scenario.
	Base *http.Transport
	// OAuth2 is the server's /oauth/token endpoint as an x/oauth2 config.
	OAuth2 *oauth2.Config
	// Access and Refresh are the login's tokens; Expiry is when the access
	// token stops working on the server.
	Access, Refresh string
	Expiry          time.Time
}

// NewAmplification starts the server and logs in as the demo user.
// Everything stops when tb ends.
func NewAmplification(tb testing.TB) *Amplification {
	tb.Helper()
	as := authtest.StartRealClock(tb, authserver.Config{AccessTTL: time.Second})
	srv, hs := as.Auth, as.HTTP
	base := &http.Transport{MaxConnsPerHost: 256, MaxIdleConnsPerHost: 256}
	tb.Cleanup(base.CloseIdleConnections)
	cfg := &oauth2.Config{ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Endpoint: oauth2.Endpoint{TokenURL: hs.URL + "/oauth/token"}}
	first, err := cfg.PasswordCredentialsToken(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base}), authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		tb.Fatal(err)
	}
	claims, err := jwtclaims.Decode(first.AccessToken)
	if err != nil {
		tb.Fatal(err)
	}
	return &Amplification{Server: srv, URL: hs.URL, Base: base, OAuth2: cfg, Access: first.AccessToken, Refresh: first.RefreshToken, Expiry: claims.ExpiresAt}
}

// Token is the login as an authrefresh.Token, with the expiry the server
// announced.
func (s *Amplification) Token() *authrefresh.Token {
	return &authrefresh.Token{AccessToken: s.Access, RefreshToken: s.Refresh, Expiry: s.Expiry}
}

// WaitForExpiry returns once the access token has expired on the server (its
// exp is whole seconds, rounded up). Waiting is the scenario here, not
// synchronisation: the test is what happens at a real expiry.
func (s *Amplification) WaitForExpiry() {
	time.Sleep(time.Until(s.Expiry) + 50*time.Millisecond)
}

// AmplificationResult is what the server saw while a client ran, per expiry.
type AmplificationResult struct {
	RefreshCalls  uint64 // refresh requests received (successful or not)
	Refreshes     uint64 // successful refreshes (rotations)
	Unauthorized  uint64 // API requests refused with 401
	ForcedLogouts uint64 // token families revoked by reuse detection
	Failed        uint64 // requests the client reported as failed
}

// Measure runs send (which returns how many requests failed) and reports the
// server's counters for that run.
func (s *Amplification) Measure(send func() (failed int)) AmplificationResult {
	before := s.Server.Counters()
	failed := send()
	after := s.Server.Counters()
	return AmplificationResult{
		RefreshCalls:  after.Refreshes + after.RefreshFailures - before.Refreshes - before.RefreshFailures,
		Refreshes:     after.Refreshes - before.Refreshes,
		Unauthorized:  after.Unauthorized401s() - before.Unauthorized401s(),
		ForcedLogouts: after.ReuseDetections - before.ReuseDetections,
		Failed:        uint64(failed),
	}
}

// Fire runs do in n goroutines released at the same instant and returns
// how many failed.
func Fire(n int, do func() error) int {
	var mu sync.Mutex
	failed := 0
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if do() != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	return failed
}

// GetMe is one request to the protected API of the server at baseURL
// through c; a status other than 200 is a failure.
func GetMe(c *http.Client, baseURL string) error {
	resp, err := c.Get(baseURL + "/api/v1/me")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Report records r as the benchmark's custom metrics.
func (r AmplificationResult) Report(b *testing.B) {
	b.ReportMetric(float64(r.RefreshCalls), "refresh-calls")
	b.ReportMetric(float64(r.Refreshes), "refreshes")
	b.ReportMetric(float64(r.Unauthorized), "401s")
	b.ReportMetric(float64(r.ForcedLogouts), "forced-logouts")
	b.ReportMetric(float64(r.Failed), "failed")
}
