package oauth_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/scenario"
	"github.com/authrefresh/authrefresh/oauth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// BenchmarkClientCredentialsAmplification: N goroutines call the API at
// once with a client-credentials token, against the reference server (real
// clock), authrefresh's oauth.ClientCredentials Session beside x/oauth2's
// clientcredentials TokenSource in the same run. Two moments:
//
//   - expiry: just after the first token (2-s lifetime) expired;
//   - refused: the server revoked every access token (1-min lifetime) —
//     a key rotation, a revoked client session.
//
// Reports the token requests the server received and the calls that failed.
//
//	go test -run '^$' -bench ClientCredentialsAmplification -benchtime 1x .
func BenchmarkClientCredentialsAmplification(b *testing.B) {
	for _, moment := range []string{"expiry", "refused"} {
		for _, n := range []int{10, 100, 1000} {
			for _, peer := range []string{"authrefresh", "x-oauth2"} {
				b.Run(fmt.Sprintf("%s/N=%d/%s", moment, n, peer), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						ccAmplification(b, moment, n, peer)
					}
				})
			}
		}
	}
}

func ccAmplification(b *testing.B, moment string, n int, peer string) {
	ttl := 2 * time.Second
	if moment == "refused" {
		ttl = time.Minute
	}
	srv := authtest.StartRealClock(b, authserver.Config{AccessTTL: ttl})
	base := &http.Transport{MaxIdleConnsPerHost: n + 8}
	defer base.CloseIdleConnections()
	tokenURL := srv.URL + "/oauth/token"
	var rt http.RoundTripper
	switch peer {
	case "authrefresh":
		s := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: tokenURL, ClientID: authserver.DemoClientID,
			ClientSecret: authserver.DemoClientSecret, HTTPClient: &http.Client{Transport: base}}, authrefresh.Options{})
		rt = &authrefresh.Transport{Session: s, Base: base}
	case "x-oauth2":
		cfg := clientcredentials.Config{TokenURL: tokenURL, ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base})
		rt = &oauth2.Transport{Source: cfg.TokenSource(ctx), Base: base}
	}
	client := &http.Client{Transport: rt, Timeout: time.Minute}
	if err := scenario.GetMe(client, srv.URL); err != nil { // the first token
		b.Fatal(err)
	}
	switch moment {
	case "expiry":
		time.Sleep(ttl + 100*time.Millisecond) // a benchmark's wait for the real clock, not a synchronisation
	case "refused":
		srv.Auth.RevokeAccessTokens()
	}
	before := srv.Auth.Counters()
	b.ResetTimer()
	failed := scenario.Fire(n, func() error { return scenario.GetMe(client, srv.URL) })
	b.StopTimer()
	after := srv.Auth.Counters()
	b.ReportMetric(float64(after.ClientTokens-before.ClientTokens), "token-calls")
	b.ReportMetric(float64(after.Unauthorized401s()-before.Unauthorized401s()), "401s")
	b.ReportMetric(float64(failed), "failed")
}
