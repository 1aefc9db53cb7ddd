package sidecar

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authrefresh/authrefresh/internal/authtest"
)

// syncBuffer is a bytes.Buffer for a logger written by server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// startProxy serves New(cfg) on a loopback port, accepting the Host
// values a client of that port sends (as the proxy command does), until the
// test ends.
func startProxy(tb testing.TB, cfg Config) *httptest.Server {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.LoginHint == "" {
		cfg.LoginHint = "log in again: authrefresh login --url URL"
	}
	srv := httptest.NewUnstartedServer(nil)
	if cfg.Guard.Hosts == nil {
		cfg.Guard.Hosts = LoopbackHosts(srv.Listener.Addr())
	}
	srv.Config.Handler = New(cfg)
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// An Upgrade (a WebSocket) goes through the net/http Transport, with the
// session's token.
func TestProxyUpgrade(t *testing.T) {
	up := authtest.StartEchoUpgrade(t)
	target, _ := url.Parse(up.URL)
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target})
	addr := proxy.Listener.Addr().String()
	authtest.Upgrade(t, addr, addr, "/ws", "")
	if got := up.Header().Get("Authorization"); got != "Bearer the-session-credential" {
		t.Fatalf("upstream got Authorization %q", got)
	}
}

// A request goes to the upstream's base path joined with its own, its
// query after the upstream's, with the session's token and without the
// caller's cookies or credentials.
func TestProxyPathAndQuery(t *testing.T) {
	var got atomic.Value // the request line and headers at the upstream
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Method + " " + r.RequestURI + " " + r.Header.Get("Authorization") + " cookie=" + r.Header.Get("Cookie"))
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL + "/v1/?tenant=a")
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target})
	for path, want := range map[string]string{
		"/orders?page=2":    "GET /v1/orders?tenant=a&page=2 Bearer the-session-credential cookie=",
		"/a%2Fb/c":          "GET /v1/a%2Fb/c?tenant=a Bearer the-session-credential cookie=",
		"/x?q=1;evil=2&p=3": "GET /v1/x?tenant=a&p=3 Bearer the-session-credential cookie=",
		"/":                 "GET /v1/?tenant=a Bearer the-session-credential cookie=",
	} {
		req, _ := http.NewRequest(http.MethodGet, proxy.URL+path, nil)
		req.Header.Set("Authorization", "Bearer the-callers-own")
		req.Header.Set("Cookie", "session=browser")
		if status, body := do(t, req); status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		if s, _ := got.Load().(string); s != want {
			t.Errorf("%s reached the upstream as %q; want %q", path, s, want)
		}
	}
}
