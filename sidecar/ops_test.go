package sidecar

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// The operator paths: health says whether a usable token can be had,
// metrics counts answers, refreshes and refusals in Prometheus text; both
// are the proxy's own (never forwarded), behind its guard, and show no
// token.
func TestProxyHealthAndMetrics(t *testing.T) {
	srv := authtest.StartRealClock(t, authserver.Config{AccessTTL: 30 * time.Second})
	var opsUpstream atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, opsPrefix) {
			opsUpstream.Add(1)
		}
		srv.Auth.ServeHTTP(w, r)
	}))
	defer upstream.Close()
	session := srv.Session(nil, authrefresh.Options{})
	target, _ := url.Parse(upstream.URL)
	proxy := startProxy(t, Config{Session: session, Upstream: target, ReplayBudget: authrefresh.NewReplayBudget(1 << 20)})
	get := func(path string, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", proxy.URL+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, _ := get("/api/v1/me", ""); status != 200 {
		t.Fatalf("a proxied request: %d", status)
	}
	tok, _ := session.Token(context.Background())
	status, health := get("/.authrefresh/health", "")
	if status != 200 || !strings.Contains(health, `"status":"ok"`) || strings.Contains(health, tok.AccessToken) {
		t.Fatalf("health: %d %s", status, health)
	}
	status, metrics := get("/.authrefresh/metrics", "")
	for _, want := range []string{`authrefresh_proxy_answers_total{class="2xx"} 1`, "# TYPE authrefresh_refreshes_total counter", "authrefresh_refusals_total 0", "authrefresh_replay_budget_bytes 1048576"} {
		if status != 200 || !strings.Contains(metrics, want) {
			t.Fatalf("metrics (%d) lack %q:\n%s", status, want, metrics)
		}
	}
	if strings.Contains(metrics, tok.AccessToken) {
		t.Fatal("metrics show the token")
	}
	if status, _ := get("/.authrefresh/nothing", ""); status != http.StatusNotFound {
		t.Fatalf("an unknown operator path: %d", status)
	}
	if status, _ := get("/.authrefresh/health", "evil.example"); status < 400 {
		t.Fatalf("health for a foreign Host (DNS rebinding): %d", status)
	}
	if err := session.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, health := get("/.authrefresh/health", ""); status != http.StatusServiceUnavailable || !strings.Contains(health, "unavailable") {
		t.Fatalf("health after logout: %d %s", status, health)
	}
	if n := opsUpstream.Load(); n != 0 {
		t.Fatalf("%d operator requests reached the upstream", n)
	}
}
