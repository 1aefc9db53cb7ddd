package authrefresh_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/naive"
	"github.com/authrefresh/authrefresh/internal/scenario"
	"github.com/authrefresh/authrefresh/oauth"
	"golang.org/x/oauth2"
)

// BenchmarkRefreshAmplification: N goroutines send one request each at the
// same moment, just after the access token expired, against the reference
// server with rotation and reuse detection (real clock, 1-s tokens). Reports
// per expiry: refresh calls, successful refreshes, 401s, reuse detections
// (forced logouts) and failed requests, for authrefresh and three peers.
// resty and axios-auth-refresh are measured in the peers module (peers/).
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
	sc := scenario.NewAmplification(b)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: sc.Base})
	var rt http.RoundTripper
	switch peer {
	case "authrefresh":
		s := authrefresh.NewSession(nil, &oauth.Config{TokenURL: sc.OAuth2.Endpoint.TokenURL, ClientID: sc.OAuth2.ClientID, ClientSecret: sc.OAuth2.ClientSecret, HTTPClient: &http.Client{Transport: sc.Base}}, authrefresh.Options{})
		if err := s.Login(ctx, sc.Token()); err != nil {
			b.Fatal(err)
		}
		rt = &authrefresh.Transport{Session: s, Base: sc.Base}
	case "x-oauth2":
		rt = &oauth2.Transport{Source: sc.OAuth2.TokenSource(ctx, &oauth2.Token{AccessToken: sc.Access, RefreshToken: sc.Refresh, Expiry: sc.Expiry}), Base: sc.Base}
	case "seed-000":
		n := &naive.Interceptor{RefreshURL: sc.URL + "/auth/refresh", Base: sc.Base}
		n.SetTokens(sc.Access, sc.Refresh)
		rt = n
	case "seed-002":
		q := &naive.Queued{Interceptor: naive.Interceptor{RefreshURL: sc.URL + "/auth/refresh", Base: sc.Base}}
		q.SetTokens(sc.Access, sc.Refresh)
		rt = q
	}
	client := &http.Client{Transport: rt, Timeout: time.Minute}
	sc.WaitForExpiry()
	sc.Measure(func() int {
		return scenario.Fire(n, func() error { return scenario.GetMe(client, sc.URL) })
	}).Report(b)
}
