package sidecar

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// countingUpstream answers 200 after reading the body, and counts requests.
type countingUpstream struct {
	requests atomic.Int32
	mu       sync.Mutex
	seen     []http.Header
}

func (u *countingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.requests.Add(1)
	u.mu.Lock()
	u.seen = append(u.seen, r.Header.Clone())
	u.mu.Unlock()
	w.Write([]byte(`{"ok":true}`))
}

func loggedInSession(t *testing.T) *authrefresh.Session {
	t.Helper()
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "the-session-credential"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// A web page the user visits cannot use the sidecar: a cross-site "simple"
// POST (Origin, text/plain), a request a browser marks cross-site, and a DNS
// rebinding request (Host: the attacker's name) are refused with a JSON
// error that says why, and never reach upstream. An allowed origin passes.
func TestProxyRefusesAmbientAuthority(t *testing.T) {
	upstream := &countingUpstream{}
	up := httptest.NewServer(upstream)
	defer up.Close()
	target, _ := url.Parse(up.URL)
	var logs syncBuffer
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target, Logger: newTestLogger(&logs),
		Guard: Guard{Origins: []string{"https://app.example"}}})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(proxy.URL, "http://"))

	attacks := map[string]func(*http.Request){
		"cross-site POST": func(r *http.Request) {
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Content-Type", "text/plain")
		},
		"cross-site fetch": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"same-site fetch":  func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") },
		"DNS rebinding":    func(r *http.Request) { r.Host = "evil.example:" + port },
		"null origin":      func(r *http.Request) { r.Header.Set("Origin", "null") },
	}
	for name, attack := range attacks {
		req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/api/v1/data", strings.NewReader(`{"name":"pwned","price":1}`))
		attack(req)
		status, body := do(t, req)
		if status != http.StatusForbidden || !strings.Contains(body, `"error"`) || !strings.Contains(body, "error_description") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if n := upstream.requests.Load(); n != 0 {
		t.Fatalf("%d refused requests reached upstream", n)
	}
	if got := strings.Count(logs.String(), "proxy: refused"); got != len(attacks) {
		t.Errorf("%d refusals logged, want %d: %s", got, len(attacks), logs.String())
	}
	for _, ok := range []func(*http.Request){
		func(*http.Request) {}, // curl: no Origin, no Sec-Fetch-Site
		func(r *http.Request) {
			r.Header.Set("Origin", "https://app.example")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		},
		func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "none") }, // typed into the address bar
		func(r *http.Request) { r.Host = "localhost:" + port },
	} {
		req, _ := http.NewRequest(http.MethodGet, proxy.URL+"/x", nil)
		ok(req)
		if status, body := do(t, req); status != 200 {
			t.Errorf("allowed request refused: %d %s", status, body)
		}
	}
}

// With a client secret, every request must carry it (407 otherwise, compared
// in constant time), and it never travels upstream.
func TestProxyClientSecret(t *testing.T) {
	upstream := &countingUpstream{}
	up := httptest.NewServer(upstream)
	defer up.Close()
	target, _ := url.Parse(up.URL)
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target, Guard: Guard{Secret: []byte("0123456789abcdef-secret")}})
	for _, auth := range []string{"", "Bearer wrong", "Basic 0123456789abcdef-secret", "Bearer 0123456789abcdef-secre"} {
		req, _ := http.NewRequest(http.MethodGet, proxy.URL+"/x", nil)
		if auth != "" {
			req.Header.Set("Proxy-Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
			t.Errorf("%q: %d", auth, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, proxy.URL+"/x", nil)
	req.Header.Set("Proxy-Authorization", "Bearer 0123456789abcdef-secret")
	if status, _ := do(t, req); status != 200 {
		t.Fatalf("with the secret: %d", status)
	}
	if upstream.requests.Load() != 1 || upstream.seen[0].Get("Proxy-Authorization") != "" || upstream.seen[0].Get("Authorization") != "Bearer the-session-credential" {
		t.Fatalf("upstream saw %d requests: %v", upstream.requests.Load(), upstream.seen)
	}
}

// A body that stops coming, or trickles, is cut off: 408, and the slot and
// the upstream connection are freed.
func TestProxySlowBodiesTimeOut(t *testing.T) {
	up := httptest.NewServer(&countingUpstream{})
	defer up.Close()
	target, _ := url.Parse(up.URL)
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target,
		Limits: Limits{Concurrent: 4, QueueWait: time.Second, BodyIdle: 100 * time.Millisecond, BodyTotal: 400 * time.Millisecond}})
	send := func(trickle bool) string {
		conn, err := net.Dial("tcp", strings.TrimPrefix(proxy.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a backstop, not the timeout under test
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\n0123456789", strings.TrimPrefix(proxy.URL, "http://"))
		if trickle { // the slow client of the scenario: a byte every 50 ms, under the idle timeout
			go func() {
				for i := 0; i < 100; i++ {
					time.Sleep(50 * time.Millisecond)
					if _, err := conn.Write([]byte("x")); err != nil {
						return
					}
				}
			}()
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return resp.Status
	}
	for _, trickle := range []bool{false, true} {
		began := time.Now()
		status := send(trickle)
		if !strings.HasPrefix(status, "408") || time.Since(began) > 5*time.Second {
			t.Errorf("trickle=%v: %q after %v", trickle, status, time.Since(began))
		}
	}
}

// Past --max-concurrent, a request waits for a slot, then gets 503.
func TestProxyConcurrencyCap(t *testing.T) {
	entered, release := make(chan struct{}, 8), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target,
		Limits: Limits{Concurrent: 2, QueueWait: 50 * time.Millisecond, BodyIdle: time.Second, BodyTotal: time.Second}})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(proxy.URL + "/held")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-entered
	<-entered
	resp, err := http.Get(proxy.URL + "/third")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d", resp.StatusCode)
	}
	close(release)
	wg.Wait()
}

// 300 concurrent 1-MiB uploads through the sidecar stay within its replay
// budget (the budget's own accounting), all succeed, and give it all back.
func TestProxyUploadsStayWithinReplayBudget(t *testing.T) {
	up := httptest.NewServer(&countingUpstream{})
	defer up.Close()
	target, _ := url.Parse(up.URL)
	budget := authrefresh.NewReplayBudget(16 << 20)
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target, ReplayBudget: budget})
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 300, MaxIdleConnsPerHost: 300}}
	defer hc.CloseIdleConnections()
	errs := authtest.RunParallel(300, func(int) error {
		req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/upload", io.NopCloser(io.LimitReader(zeroReader{}, 1<<20)))
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if n, first := authtest.CountErrors(errs); n > 0 {
		t.Fatalf("%d uploads failed: %v", n, first)
	}
	if budget.Peak() > budget.Limit() || budget.InUse() != 0 {
		t.Fatalf("budget peak %d of %d, in use after %d", budget.Peak(), budget.Limit(), budget.InUse())
	}
	t.Logf("replay copies peaked at %d MiB of the %d-MiB budget", budget.Peak()>>20, budget.Limit()>>20)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A running proxy heals after a new login: once the session ended, requests
// get 401 session_expired with the command that logs in again; after a login
// by another process to the same token file, it serves again, no restart.
func TestProxyHealsAfterLogin(t *testing.T) {
	as := authtest.Start(t, authserver.Config{})
	path := filepath.Join(t.TempDir(), "default.token.json")
	session := as.Session(filestore.New(path), authrefresh.Options{})
	target, _ := url.Parse(as.URL)
	var logs syncBuffer
	proxy := startProxy(t, Config{Session: session, Upstream: target, Logger: newTestLogger(&logs),
		LoginHint: "log in again: authrefresh login --url " + as.URL})
	get := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, proxy.URL+"/api/v1/me", nil)
		return do(t, req)
	}
	if status, body := get(); status != 200 {
		t.Fatalf("before: %d %s", status, body)
	}
	tok, _ := session.Token(context.Background())
	as.Auth.RevokeRefreshToken(tok.RefreshToken)
	as.Clock.Advance(3 * time.Second)
	status, body := get()
	if status != 401 || !strings.Contains(body, "session_expired") || !strings.Contains(body, "authrefresh login --url "+as.URL) {
		t.Fatalf("after the revocation: %d %s", status, body)
	}
	if !strings.Contains(logs.String(), "authrefresh login --url "+as.URL) {
		t.Fatalf("the log does not say how to log in again: %s", logs.String())
	}
	as.Session(filestore.New(path), authrefresh.Options{}) // authrefresh login, elsewhere
	as.Clock.Advance(time.Second)
	if status, body := get(); status != 200 {
		t.Fatalf("after a new login: %d %s", status, body)
	}
}

func newTestLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// A streamed answer (unknown length: server-sent events, a long poll) reaches
// the caller as it comes, not when it ends.
func TestProxyStreamsAnswers(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "data: second\n\n")
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	proxy := startProxy(t, Config{Session: loggedInSession(t), Upstream: target})
	resp, err := http.Get(proxy.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event before the stream ended: %q %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("rest: %q", rest)
	}
}
