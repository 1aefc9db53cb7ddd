package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/internal/redistest"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/oauth"
	"github.com/authrefresh/authrefresh/sidecar"
)

// curl-like clients through the sidecar across five token lifetimes: every
// request (POSTs included) succeeds, refreshes follow the refresh-ahead
// rate, the caller's Authorization never reaches upstream, nothing leaks into
// the log.
func TestProxyAcrossLifetimes(t *testing.T) {
	clock := fakeclock.New()
	srv, err := authserver.New(authserver.Config{AccessTTL: 2 * time.Second, Clock: clock.Now, PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	var upstreamAuth []string
	var mu sync.Mutex
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamAuth = append(upstreamAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	defer upstream.Close()
	tok, err := jsonauth.Login(context.Background(), nil, upstream.URL+"/auth/login", "demo", "demo-password")
	if err != nil {
		t.Fatal(err)
	}
	tok.IssuedAt, tok.Expiry = clock.Now(), clock.Now().Add(2*time.Second)
	renewed := make(chan struct{}, 64)
	session := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: upstream.URL + "/auth/refresh"},
		authrefresh.Options{Clock: clock.Now, OnTokenChange: func(_, _ *authrefresh.Token) { renewed <- struct{}{} }})
	if err := session.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	<-renewed
	var logs syncBuffer
	target, _ := url.Parse(upstream.URL)
	proxy := startProxy(t, sidecar.Config{Session: session, Upstream: target, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer proxy.Close()

	for i := 0; i < 40; i++ { // 40 × 250ms = 10 s = 5 lifetimes
		before := session.Stats().RefreshAheadStarts
		body := fmt.Sprintf(`{"name":"via-proxy-%02d","price":%d}`, i, i+1)
		req, _ := http.NewRequest("POST", proxy.URL+"/api/v1/data", io.NopCloser(strings.NewReader(body))) // a stream, as curl sends
		req.Header.Set("Authorization", "Bearer caller-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p authserver.Product
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 201 || p.Name != fmt.Sprintf("via-proxy-%02d", i) {
			t.Fatalf("request %d: %d %+v", i, resp.StatusCode, p)
		}
		if session.Stats().RefreshAheadStarts > before {
			<-renewed
		}
		clock.Advance(250 * time.Millisecond)
	}
	got := srv.Counters()
	if got.Unauthorized401s() != 0 || got.ReuseDetections != 0 || len(srv.Products()) != 40 {
		t.Fatalf("401s=%d reuse=%d products=%d", got.Unauthorized401s(), got.ReuseDetections, len(srv.Products()))
	}
	if want := 10.0 / 1.5; math.Abs(float64(got.Refreshes)-want) > 1 {
		t.Fatalf("refreshes=%d, want %.1f ± 1", got.Refreshes, want)
	}
	mu.Lock()
	for _, a := range upstreamAuth {
		if strings.Contains(a, "caller-secret") {
			t.Error("the caller's Authorization reached upstream")
		}
	}
	mu.Unlock()
	current, _ := session.Token(context.Background())
	if strings.Contains(logs.String(), current.AccessToken) || !strings.Contains(logs.String(), "status=201") {
		t.Fatalf("log: %s", logs.String())
	}

	// A refusal mid-stream is refreshed and replayed through the proxy too.
	srv.RevokeAccessTokens()
	resp, err := http.Post(proxy.URL+"/api/v1/data", "application/json", io.NopCloser(strings.NewReader(`{"name":"after-revoke","price":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("after revocation: %d", resp.StatusCode)
	}
	// A dead session is a 401 JSON answer, not a hang or a 502.
	rt, _ := session.Token(context.Background())
	srv.RevokeRefreshToken(rt.RefreshToken)
	srv.RevokeAccessTokens()
	resp, err = http.Get(proxy.URL + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 401 || out["error"] != "session_expired" {
		t.Fatalf("expired session through the proxy: %d %v", resp.StatusCode, out)
	}
}

func TestProxyRefusesRemoteListen(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:9000": true, "[::1]:9000": true, "localhost:9000": true, "0.0.0.0:9000": false, ":9000": false, "192.0.2.1:9000": false} {
		if err := checkLoopback(addr, false); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := checkLoopback("0.0.0.0:9000", true); err != nil {
		t.Error("--allow-remote ignored")
	}
	if code, _, errOut := cli(t, "", "proxy", "--listen", "0.0.0.0:0", "--upstream", "http://127.0.0.1:1"); code != exitUsage || !strings.Contains(errOut, "--allow-remote") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// The proxy sends the session's token to its upstream and nowhere else: an
// absolute URL in the request line or a spoofed Host is refused, and an
// upstream redirect to another origin goes back to the caller.
func TestProxySendsTokenOnlyToUpstream(t *testing.T) {
	var mu sync.Mutex
	var elsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer other.Close()
	var upstreamSaw []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Header.Get("Cookie") != "" {
			t.Errorf("the caller's cookie reached upstream: %q", r.Header.Get("Cookie"))
		}
		upstreamSaw = append(upstreamSaw, r.Host+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
		}
	}))
	defer upstream.Close()
	session := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	if err := session.Login(context.Background(), &authrefresh.Token{AccessToken: "the-session-secret"}); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(upstream.URL)
	proxy := startProxy(t, sidecar.Config{Session: session, Upstream: target, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer proxy.Close()
	otherHost := strings.TrimPrefix(other.URL, "http://")

	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", proxy.URL+"/redirect", nil)
	req.Header.Set("Authorization", "Bearer the-callers-own")
	req.Header.Set("Cookie", "session=browser-state")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), other.URL) {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, raw := range []string{
		"GET " + other.URL + "/absolute HTTP/1.1\r\nHost: " + otherHost + "\r\nConnection: close\r\n\r\n", // absolute-form request line
		"GET /spoofed HTTP/1.1\r\nHost: " + otherHost + "\r\nConnection: close\r\n\r\n",                   // Host of another origin
		"CONNECT " + otherHost + " HTTP/1.1\r\nHost: " + otherHost + "\r\nConnection: close\r\n\r\n",      // tunnel attempt
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(proxy.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write([]byte(raw))
		_, _ = io.Copy(io.Discard, conn)
		conn.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(elsewhere) != 0 {
		t.Fatalf("another origin was reached through the proxy: %q", elsewhere)
	}
	for _, seen := range upstreamSaw {
		if !strings.HasPrefix(seen, strings.TrimPrefix(upstream.URL, "http://")+" ") || !strings.HasSuffix(seen, "Bearer the-session-secret") {
			t.Errorf("upstream saw %q", seen)
		}
	}
	// The absolute-form and spoofed-Host requests name another host: they
	// are refused before reaching anything (a DNS-rebinding page sends the
	// same); only the redirect request reached upstream.
	if len(upstreamSaw) != 1 {
		t.Fatalf("upstream saw %d requests, want only the redirect one: %q", len(upstreamSaw), upstreamSaw)
	}
}

// With --quiet (a Warn-level logger) a successful request logs nothing and a
// failed one still logs its line.
func TestProxyQuietLogsOnlyFailures(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer upstream.Close()
	session := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	_ = session.Login(context.Background(), &authrefresh.Token{AccessToken: "quiet-secret"})
	var logs syncBuffer
	target, _ := url.Parse(upstream.URL)
	proxy := startProxy(t, sidecar.Config{Session: session, Upstream: target, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	defer proxy.Close()
	for _, path := range []string{"/ok", "/broken"} {
		resp, err := http.Get(proxy.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	proxy.Close() // waits for the handlers: each logs after its answer is sent
	if got := logs.String(); strings.Contains(got, "/ok") || !strings.Contains(got, "path=/broken") || !strings.Contains(got, "status=502") {
		t.Fatalf("quiet log: %q", got)
	}
}

// Every proxy flag can come from the environment (AUTHREFRESH_PROXY_NAME),
// as a container sets it; the command line wins; a bad value names its
// variable.
func TestProxyFlagsFromEnvironment(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	t.Setenv("AUTHREFRESH_PROXY_LISTEN", "0.0.0.0:0")
	t.Setenv("AUTHREFRESH_PROXY_UPSTREAM", "http://127.0.0.1:9")
	if code, _, errOut := cli(t, "", "proxy"); code != exitUsage || !strings.Contains(errOut, "--listen 0.0.0.0:0 is not a loopback address") {
		t.Fatalf("listen from the environment: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "proxy", "--listen", "127.0.0.1:0"); code != exitLogin {
		t.Fatalf("the command line over the environment: %d %s", code, errOut)
	}
	t.Setenv("AUTHREFRESH_PROXY_MAX_CONCURRENT", "many")
	if code, _, errOut := cli(t, "", "proxy", "--listen", "127.0.0.1:0"); code != exitUsage || !strings.Contains(errOut, "AUTHREFRESH_PROXY_MAX_CONCURRENT") {
		t.Fatalf("a bad value from the environment: %d %s", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer for a logger written by server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// startProxy serves sidecar.New(cfg) on a loopback port, accepting the Host
// values a client of that port sends (as the proxy command does), until the
// test ends.
func startProxy(tb testing.TB, cfg sidecar.Config) *httptest.Server {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.LoginHint == "" {
		cfg.LoginHint = "log in again: authrefresh login --url URL"
	}
	srv := httptest.NewUnstartedServer(nil)
	if cfg.Guard.Hosts == nil {
		cfg.Guard.Hosts = sidecar.LoopbackHosts(srv.Listener.Addr())
	}
	srv.Config.Handler = sidecar.New(cfg)
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

// --allow-remote refuses to start without a client secret; a secret file
// others can read is refused too.
func TestProxyRemoteNeedsSecret(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	code, _, errOut := cli(t, "", "proxy", "--listen", "127.0.0.1:0", "--allow-remote", "--upstream", "http://127.0.0.1:1")
	if code != exitUsage || !strings.Contains(errOut, "--client-secret-file") {
		t.Fatalf("--allow-remote without a secret: %d %s", code, errOut)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, "", "proxy", "--allow-remote", "--client-secret-file", secret, "--upstream", "http://127.0.0.1:1")
	if code != exitUsage || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("a readable secret file: %d %s", code, errOut)
	}
}

// A Redis-shared sidecar needs no local profile: the profile saved in Redis
// at login (URLs only) is enough on a fresh host.
func TestRedisSidecarWithoutLocalProfile(t *testing.T) {
	r := redistest.Start(t)
	_, base := startServer(t)
	redisURL := "redis://" + r.Addr() + "/0"
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", base, "--username", "demo", "--password-stdin", "--redis", redisURL, "--session", "fleet"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir()) // a fresh host
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"proxy", "--listen", "127.0.0.1:0", "--redis", redisURL, "--session", "fleet", "--quiet"}, nil, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("proxy did not start: %v (exit %d)", err, <-done)
	}
	go io.Copy(io.Discard, out)
	addr := strings.Fields(strings.TrimPrefix(line, "authrefresh proxy on "))[0]
	resp, err := http.Get(addr + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; resp.StatusCode != 200 || code != exitOK {
		t.Fatalf("through the fresh sidecar: %d, exit %d", resp.StatusCode, code)
	}
	// Nothing saved and no --url: a clear error, not a panic.
	code, _, errOut := cli(t, "", "proxy", "--redis", redisURL, "--session", "never-logged-in")
	if code != exitLogin || !strings.Contains(errOut, "--session never-logged-in") {
		t.Fatalf("unknown session: %d %s", code, errOut)
	}
}

// A client-credentials session shared through Redis: a sidecar on a fresh
// host finds the profile in Redis, with its own copy of the client secret
// (--provider-secret-file), and re-acquires with it when the token is
// refused.
func TestRedisClientCredentialsSidecar(t *testing.T) {
	r := redistest.Start(t)
	srv, base := startServer(t)
	redisURL := "redis://" + r.Addr() + "/0"
	login := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", login)
	secret := filepath.Join(login, "client-secret")
	os.WriteFile(secret, []byte(authserver.DemoClientSecret), 0o600)
	if code, _, errOut := cli(t, "", "login", "--client-id", authserver.DemoClientID, "--token-url", base+"/oauth/token", "--client-secret-file", secret,
		"--api", base+"/", "--redis", redisURL, "--session", "m2m"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	fresh := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", fresh)
	os.Remove(secret) // the login host's path means nothing here
	if code, _, errOut := cli(t, "", "proxy", "--redis", redisURL, "--session", "m2m"); code != exitUsage || !strings.Contains(errOut, "--client-secret-file") {
		t.Fatalf("no secret on this host: %d %s", code, errOut)
	}
	local := filepath.Join(fresh, "secret")
	os.WriteFile(local, []byte(authserver.DemoClientSecret), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"proxy", "--listen", "127.0.0.1:0", "--redis", redisURL, "--session", "m2m", "--provider-secret-file", local, "--quiet"}, nil, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("proxy did not start: %v (exit %d)", err, <-done)
	}
	go io.Copy(io.Discard, out)
	addr := strings.Fields(strings.TrimPrefix(line, "authrefresh proxy on "))[0]
	before := srv.Counters().ClientTokens
	srv.RevokeAccessTokens()
	resp, err := http.Get(addr + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; resp.StatusCode != 200 || code != exitOK || srv.Counters().ClientTokens != before+1 {
		t.Fatalf("through the fresh sidecar: %d, exit %d, %d new tokens", resp.StatusCode, code, srv.Counters().ClientTokens-before)
	}
}

// Several sidecars share one session through Redis (proxy --redis): after a
// revocation they refresh once between them.
func TestSidecarsShareSessionThroughRedis(t *testing.T) {
	r := redistest.Start(t)
	srv, base := startServer(t)
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	redisURL := "redis://" + r.Addr() + "/0"
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", base, "--username", "demo", "--password-stdin", "--redis", redisURL, "--session", "shared"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	p, err := loadProfile("default")
	if err != nil || p.Redis != redisURL {
		t.Fatalf("profile %+v %v", p, err)
	}
	target, _ := url.Parse(base)
	var proxies []*httptest.Server
	for i := 0; i < 3; i++ {
		s, closeStore, err := p.session()
		if err != nil {
			t.Fatal(err)
		}
		defer closeStore()
		px := startProxy(t, sidecar.Config{Session: s, Upstream: target, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer px.Close()
		proxies = append(proxies, px)
	}
	for round := 1; round <= 3; round++ {
		srv.RevokeAccessTokens()
		var wg sync.WaitGroup
		for _, px := range proxies {
			for g := 0; g < 5; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := http.Post(px.URL+"/api/v1/data", "application/json", strings.NewReader(`{"name":"shared","price":1}`))
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 201 {
						t.Errorf("status %d", resp.StatusCode)
					}
				}()
			}
		}
		wg.Wait()
		if got := srv.Counters(); got.Refreshes != uint64(round) || got.ReuseDetections != 0 {
			t.Fatalf("round %d: refreshes=%d reuse=%d", round, got.Refreshes, got.ReuseDetections)
		}
	}
	if code, _, _ := cli(t, "", "proxy", "--redis", redisURL); code != exitUsage {
		t.Fatal("--redis without --session accepted")
	}
}

// The sidecar with a DPoP-bound session: each upstream request carries a
// new proof and the token under the DPoP scheme, never as a bearer token;
// a streamed body goes out again intact when the upstream asks for its new
// nonce, and a refused token is refreshed with the key the token carries.
func TestProxyDPoP(t *testing.T) {
	e := authtest.StartRealClock(t, authserver.Config{DPoPNonce: true, AccessTTL: time.Hour, Clients: map[string]string{"cli": ""}})
	e.Auth.RotateDPoPNonce()
	key, _ := oauth.NewDPoPKey()
	login := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli", DPoP: key}
	tok, err := login.PasswordLogin(context.Background(), authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	session := authrefresh.NewSession(nil, &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli"}, authrefresh.Options{})
	if err := session.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(e.URL)
	proxy := startProxy(t, sidecar.Config{Session: session, Upstream: target})
	for i, step := range []func(){func() {}, e.Auth.RotateDPoPNonce, e.Auth.RevokeAccessTokens} {
		step()
		body := fmt.Sprintf(`{"name":"dpop-%d","price":1}`, i)
		resp, err := http.Post(proxy.URL+"/api/v1/data", "application/json", io.NopCloser(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		var p authserver.Product
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 201 || p.Name != fmt.Sprintf("dpop-%d", i) {
			t.Fatalf("step %d: %d %+v", i, resp.StatusCode, p)
		}
	}
	// A bound token sent as a bearer token would be refused as dpop_bound.
	got := e.Auth.Counters()
	if got.DPoPReplays != 0 || got.DPoPBadProofs != 0 || got.Unauthorized["dpop_bound"] != 0 || got.Refreshes != 1 || got.Unauthorized["dpop_nonce"] != 2 {
		t.Fatalf("counters %+v", got)
	}
}
