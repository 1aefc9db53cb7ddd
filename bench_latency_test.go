package authrefresh_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/naive"
	"github.com/authrefresh/authrefresh/internal/scenario"
	"github.com/authrefresh/authrefresh/jsonauth"
)

// BenchmarkTailLatencyAcrossExpiry: 16 goroutines of steady traffic for 6 s
// of 1-s tokens over loopback, the server taking 50 ms per refresh. Requests
// that start between 50 ms before and 150 ms after a token's server-side
// expiry are in "expiry windows". Reports p50/p99 in and outside them and the
// p99 ratio, for authrefresh (refresh-ahead) and the seed-002 queue
// (reactive: refresh after a 401). resty and axios-auth-refresh are measured
// in the peers module.
//
//	go test -run '^$' -bench TailLatency -benchtime 1x .
func BenchmarkTailLatencyAcrossExpiry(b *testing.B) {
	for _, peer := range []string{"authrefresh", "seed-002"} {
		b.Run(peer, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sc := scenario.NewSteady(b)
				var rt http.RoundTripper
				switch peer {
				case "authrefresh":
					s := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: sc.URL + "/auth/refresh", HTTPClient: &http.Client{Transport: sc.Base}}, authrefresh.Options{})
					if err := s.Login(context.Background(), sc.Login); err != nil {
						b.Fatal(err)
					}
					rt = &authrefresh.Transport{Session: s, Base: sc.Base}
				default:
					q := &naive.Queued{Interceptor: naive.Interceptor{RefreshURL: sc.URL + "/auth/refresh", Base: sc.Base}}
					q.SetTokens(sc.Login.AccessToken, sc.Login.RefreshToken)
					rt = q
				}
				client := &http.Client{Transport: rt}
				sc.Run(func() error { return scenario.GetMe(client, sc.URL) }).Report(b)
			}
		})
	}
}
