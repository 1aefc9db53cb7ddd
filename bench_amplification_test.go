package authrefresh_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/naive"
	"golang.org/x/oauth2"
)

// BenchmarkRefreshAmplification: N goroutines send one request each at the
// same moment, just after the access token expired, against the reference
// server with rotation and reuse detection (real clock, 1-s tokens). Reports
// per expiry: refresh calls, successful refreshes, 401s, reuse detections
// (forced logouts) and failed requests, for authrefresh and three peers.
//
//	go test -run '^$' -bench RefreshAmplification -benchtime 1x .
//	AUTHREFRESH_HEAVY=1 go test -run '^$' -bench RefreshAmplification -benchtime 1x .   # adds N = 10,000
func BenchmarkRefreshAmplification(b *testing.B) {
	ns := []int{10, 100, 1000}
	if os.Getenv("AUTHREFRESH_HEAVY") == "1" {
		ns = append(ns, 10000)
	}
	for _, n := range ns {
		for _, peer := range []string{"authrefresh", "x-oauth2", "seed-000", "seed-002"} {
			b.Run(fmt.Sprintf("N=%d/%s", n, peer), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					amplification(b, n, peer)
				}
			})
		}
	}
}

func amplification(b *testing.B, n int, peer string) {
	srv, err := authserver.New(authserver.Config{AccessTTL: time.Second, PasswordCost: 4})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	base := &http.Transport{MaxConnsPerHost: 256, MaxIdleConnsPerHost: 256}
	defer base.CloseIdleConnections()
	ctx := context.Background()
	cfg := &oauth2.Config{ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Endpoint: oauth2.Endpoint{TokenURL: hs.URL + "/oauth/token"}}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base})
	first, err := cfg.PasswordCredentialsToken(ctx, authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		b.Fatal(err)
	}
	var rt http.RoundTripper
	switch peer {
	case "authrefresh":
		s := authrefresh.NewSession(nil, &authrefresh.OAuth2Refresher{TokenURL: hs.URL + "/oauth/token", ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTPClient: &http.Client{Transport: base}}, authrefresh.Options{})
		if err := s.Login(ctx, &authrefresh.Token{AccessToken: first.AccessToken, RefreshToken: first.RefreshToken, Expiry: first.Expiry}); err != nil {
			b.Fatal(err)
		}
		rt = &authrefresh.Transport{Session: s, Base: base}
	case "x-oauth2":
		rt = &oauth2.Transport{Source: cfg.TokenSource(ctx, first), Base: base}
	case "seed-000":
		n := &naive.Interceptor{RefreshURL: hs.URL + "/auth/refresh", Base: base}
		n.SetTokens(first.AccessToken, first.RefreshToken)
		rt = n
	case "seed-002":
		q := &naive.Queued{Interceptor: naive.Interceptor{RefreshURL: hs.URL + "/auth/refresh", Base: base}}
		q.SetTokens(first.AccessToken, first.RefreshToken)
		rt = q
	}
	client := &http.Client{Transport: rt, Timeout: time.Minute}
	claims, err := authrefresh.DecodeClaims(first.AccessToken)
	if err != nil {
		b.Fatal(err)
	}
	// Let the token expire on the server too (its exp is whole seconds, rounded
	// up): this is the scenario, not synchronisation.
	time.Sleep(time.Until(claims.ExpiresAt) + 50*time.Millisecond)
	before := srv.Counters()
	var failed atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(hs.URL + "/api/v1/me")
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	after := srv.Counters()
	b.ReportMetric(float64(after.Refreshes+after.RefreshFailures-before.Refreshes-before.RefreshFailures), "refresh-calls")
	b.ReportMetric(float64(after.Refreshes-before.Refreshes), "refreshes")
	b.ReportMetric(float64(after.Unauthorized401s()-before.Unauthorized401s()), "401s")
	b.ReportMetric(float64(after.ReuseDetections-before.ReuseDetections), "forced-logouts")
	b.ReportMetric(float64(failed.Load()), "failed")
}
