package peers

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/scenario"
	"github.com/authrefresh/authrefresh/jsonauth"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireAxios skips without node or the driver's packages, unless
// AUTHREFRESH_REQUIRE_PEERS=1 (as in CI) makes that a failure.
func requireAxios(tb testing.TB) {
	tb.Helper()
	if err := AxiosReady(); err != nil {
		if os.Getenv("AUTHREFRESH_REQUIRE_PEERS") == "1" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
}

// peer sends n requests at once through one client of the named kind and
// returns how many failed.
type peer func(tb testing.TB, sc *scenario.Amplification, n int) int

var peersByName = map[string]peer{
	"authrefresh": func(tb testing.TB, sc *scenario.Amplification, n int) int {
		s := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: sc.URL + "/auth/refresh", HTTPClient: &http.Client{Transport: sc.Base}}, authrefresh.Options{})
		if err := s.Login(context.Background(), sc.Token()); err != nil {
			tb.Fatal(err)
		}
		c := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: sc.Base}, Timeout: time.Minute}
		return scenario.Fire(n, func() error { return scenario.GetMe(c, sc.URL) })
	},
	"resty": func(tb testing.TB, sc *scenario.Amplification, n int) int {
		p := NewResty(sc.URL, sc.URL+"/auth/refresh", sc.Access, sc.Refresh, sc.Base)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return scenario.Fire(n, func() error { return p.Get(ctx, "/api/v1/me") })
	},
	"axios-auth-refresh":          axiosPeer(AxiosDefaults),
	"axios-auth-refresh-no-dedup": axiosPeer(AxiosNoDedup),
}

func axiosPeer(mode AxiosMode) peer {
	return func(tb testing.TB, sc *scenario.Amplification, n int) int {
		requireAxios(tb)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		failed, err := RunAxiosAmplification(ctx, mode, sc.URL, n, sc.Access, sc.Refresh)
		if err != nil {
			tb.Fatal(err)
		}
		return failed
	}
}

var peerOrder = []string{"authrefresh", "resty", "axios-auth-refresh", "axios-auth-refresh-no-dedup"}

// Each peer is wired correctly: one request across an expiry is refused
// once (except by authrefresh, which refreshes before sending), refreshed
// once, and succeeds. A peer that failed this would make its figures below
// meaningless.
func TestEachPeerSurvivesOneExpiry(t *testing.T) {
	for _, name := range peerOrder {
		t.Run(name, func(t *testing.T) {
			sc := scenario.NewAmplification(t)
			sc.WaitForExpiry()
			res := sc.Measure(func() int { return peersByName[name](t, sc, 1) })
			want401 := uint64(1)
			if name == "authrefresh" {
				want401 = 0
			}
			if res.Failed != 0 || res.Refreshes != 1 || res.RefreshCalls != 1 || res.Unauthorized != want401 || res.ForcedLogouts != 0 {
				t.Fatalf("%s across one expiry: %+v (want 1 refresh, %d 401s, nothing failed)", name, res, want401)
			}
		})
	}
}

// Many concurrent requests at an expiry: authrefresh refreshes once, before
// sending, so the server refuses nothing. resty, as wired here (refreshes
// serialised, each with the newest refresh token), never trips reuse
// detection and loses nothing. axios-auth-refresh's counts are its own
// behaviour, not our wiring's, and depend on timing: with its defaults it
// rejects the 401s that arrive during its refresh (its #307), and with
// deduplicateRefresh: false it was seen to present one refresh token twice
// when its refresh cycles overlapped (a forced logout; BENCHMARKS.md). They
// are logged here and measured by the benchmarks, not judged.
func TestConcurrentExpiry(t *testing.T) {
	for _, name := range peerOrder {
		t.Run(name, func(t *testing.T) {
			sc := scenario.NewAmplification(t)
			sc.WaitForExpiry()
			res := sc.Measure(func() int { return peersByName[name](t, sc, 50) })
			t.Logf("%s, 50 requests: %+v", name, res)
			switch name {
			case "authrefresh":
				if res.RefreshCalls != 1 || res.Unauthorized != 0 || res.ForcedLogouts != 0 || res.Failed != 0 {
					t.Fatalf("authrefresh: %+v, want 1 refresh, no 401, nothing failed", res)
				}
			case "resty":
				if res.ForcedLogouts != 0 || res.Failed != 0 {
					t.Fatalf("resty: %+v, want no reuse detection and nothing failed", res)
				}
			}
		})
	}
}

// BenchmarkAmplification is BenchmarkRefreshAmplification of the root
// package for the peers outside the module, with authrefresh in the same
// run: N requests at the same instant just after the access token expired.
//
//	go test -run '^$' -bench Amplification -benchtime 1x
func BenchmarkAmplification(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, name := range peerOrder {
			b.Run(fmt.Sprintf("N=%d/%s", n, name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					sc := scenario.NewAmplification(b)
					sc.WaitForExpiry()
					sc.Measure(func() int { return peersByName[name](b, sc, n) }).Report(b)
				}
			})
		}
	}
}

// steadyPeers each run the steady-traffic scenario with one client.
var steadyPeers = map[string]func(tb testing.TB, sc *scenario.Steady) scenario.TailResult{
	"authrefresh": func(tb testing.TB, sc *scenario.Steady) scenario.TailResult {
		s := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: sc.URL + "/auth/refresh", HTTPClient: &http.Client{Transport: sc.Base}}, authrefresh.Options{})
		if err := s.Login(context.Background(), sc.Login); err != nil {
			tb.Fatal(err)
		}
		c := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: sc.Base}, Timeout: time.Minute}
		return sc.Run(func() error { return scenario.GetMe(c, sc.URL) })
	},
	"resty": func(tb testing.TB, sc *scenario.Steady) scenario.TailResult {
		p := NewResty(sc.URL, sc.URL+"/auth/refresh", sc.Login.AccessToken, sc.Login.RefreshToken, sc.Base)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return sc.Run(func() error { return p.Get(ctx, "/api/v1/me") })
	},
	"axios-auth-refresh":          axiosSteady(AxiosDefaults),
	"axios-auth-refresh-no-dedup": axiosSteady(AxiosNoDedup),
}

func axiosSteady(mode AxiosMode) func(tb testing.TB, sc *scenario.Steady) scenario.TailResult {
	return func(tb testing.TB, sc *scenario.Steady) scenario.TailResult {
		requireAxios(tb)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := RunAxiosSteady(ctx, mode, sc)
		if err != nil {
			tb.Fatal(err)
		}
		return res
	}
}

// BenchmarkTailLatency is BenchmarkTailLatencyAcrossExpiry of the root
// package for the peers outside the module, with authrefresh in the same
// run: steady traffic across 1-s token expiries, 50 ms per refresh, p99 in
// expiry windows against p99 elsewhere.
//
//	go test -run '^$' -bench TailLatency -benchtime 1x
func BenchmarkTailLatency(b *testing.B) {
	for _, name := range peerOrder {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				steadyPeers[name](b, scenario.NewSteady(b)).Report(b)
			}
		})
	}
}
