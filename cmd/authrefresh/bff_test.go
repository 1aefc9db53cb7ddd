package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/redistest"
)

// authrefresh bff in front of an app directory and the reference server's
// API: a browser logs in through the provider, loads the app and calls the
// API with only its cookie and the CSRF header.
func TestBFFCommand(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	srv, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte(authserver.DemoClientSecret+"\n"), 0o600)
	app := filepath.Join(dir, "app")
	os.Mkdir(app, 0o700)
	os.WriteFile(filepath.Join(app, "index.html"), []byte("<h1>products</h1>"), 0o600)
	origin := startBFF(t, "--issuer", issuer, "--client-id", authserver.DemoClientID, "--client-secret-file", secret,
		"--api", "/api/="+issuer+"/api/v1/", "--static", app)
	browser, page := loggedInBrowser(t, origin)
	if !strings.Contains(page, "products") {
		t.Fatalf("after login: %s", page)
	}
	if status, body := apiGet(t, browser, origin+"/api/me"); status != 200 || !strings.Contains(body, authserver.DemoUser) || srv.Counters().Authorizations != 1 {
		t.Fatalf("/api/me: %d %s", status, body)
	}
}

// bff --sessions DIR --seal-key FILE: the sessions outlive the BFF (one
// started again on the directory serves the browser's session), in 0600
// files that hold no token in clear; records older than the sessions'
// absolute lifetime are swept.
func TestBFFCommandKeepsSessions(t *testing.T) {
	_, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	dir := t.TempDir()
	secret, keys, sessions := filepath.Join(dir, "secret"), filepath.Join(dir, "keys"), filepath.Join(dir, "sessions")
	os.WriteFile(secret, []byte(authserver.DemoClientSecret+"\n"), 0o600)
	if code, _, errOut := cli(t, "", "seal-key", keys); code != exitOK {
		t.Fatalf("seal-key: %s", errOut)
	}
	args := []string{"--issuer", issuer, "--client-id", authserver.DemoClientID, "--client-secret-file", secret,
		"--api", "/api/=" + issuer + "/api/v1/", "--sessions", sessions, "--seal-key", keys}
	// A session's record saved longer ago than its absolute lifetime (12 h)
	// and an hour: swept at start.
	os.Mkdir(sessions, 0o700)
	ended := filepath.Join(sessions, "h-ended.token.json")
	os.WriteFile(ended, []byte("{}"), 0o600)
	long := time.Now().Add(-13*time.Hour - time.Minute)
	os.Chtimes(ended, long, long)
	origin, stop := startBFFStop(t, args...)
	if _, err := os.Stat(ended); !os.IsNotExist(err) {
		t.Fatalf("an ended session's record was not swept: %v", err)
	}
	browser, _ := loggedInBrowser(t, origin)
	if status, _ := apiGet(t, browser, origin+"/api/me"); status != 200 {
		t.Fatalf("/api/me: %d", status)
	}
	stop()
	// Cookies belong to the host, not the port: the browser's session
	// cookie goes to the BFF started again on another port.
	again := startBFF(t, args...)
	if status, body := apiGet(t, browser, again+"/api/me"); status != 200 || !strings.Contains(body, authserver.DemoUser) {
		t.Fatalf("/api/me after a restart: %d %s", status, body)
	}
	files, _ := os.ReadDir(sessions)
	if len(files) < 2 {
		t.Fatalf("%d files in the sessions directory", len(files))
	}
	for _, f := range files {
		info, _ := f.Info()
		data, _ := os.ReadFile(filepath.Join(sessions, f.Name()))
		if info.Mode().Perm() != 0o600 || strings.Contains(string(data), "eyJ") || strings.Contains(string(data), "refresh_token") {
			t.Fatalf("%s: mode %v, %d bytes, a token in clear or readable by others", f.Name(), info.Mode().Perm(), len(data))
		}
	}
}

// A BFF's missing settings and a remote plain-http origin are refused
// before it listens.
func TestBFFCommandRefusals(t *testing.T) {
	for _, args := range [][]string{
		{"bff", "--client-id", "c", "--url", "http://127.0.0.1:1"},
		{"bff", "--issuer", "http://127.0.0.1:1", "--client-id", "c", "--url", "127.0.0.1:1"},
		{"bff", "--issuer", "http://127.0.0.1:1", "--client-id", "c", "--url", "http://127.0.0.1:1", "--api", "nodelimiter"},
		{"bff", "--issuer", "http://127.0.0.1:1", "--client-id", "c", "--url", "http://127.0.0.1:1", "--sessions", "d", "--redis", "redis://127.0.0.1:1"},
	} {
		if code, _, errOut := cli(t, "", args...); code != exitUsage {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
}

// bff --demo: one command runs the reference server and serves the
// products app through the BFF; a browser logs in and the app's API call
// answers.
func TestBFFDemo(t *testing.T) {
	origin := startBFF(t, "--demo")
	browser, page := loggedInBrowser(t, origin)
	if !strings.Contains(page, "<title>Products</title>") {
		t.Fatalf("the app: %.80s", page)
	}
	if status, body := apiGet(t, browser, origin+"/app.js"); status != 200 || !strings.Contains(body, "X-CSRF") {
		t.Fatalf("/app.js: %d %.80s", status, body)
	}
	if status, body := apiGet(t, browser, origin+"/api/data"); status != 200 || !strings.Contains(body, `"items"`) {
		t.Fatalf("/api/data: %d %s", status, body)
	}
}

// startBFF runs authrefresh bff with args (and --url, on a free loopback
// port) until the test ends, and returns its origin once it listens.
func startBFF(t *testing.T, args ...string) string {
	t.Helper()
	origin, _ := startBFFStop(t, args...)
	return origin
}

// startBFFStop is startBFF, with a function that stops the BFF before the
// test ends.
func startBFFStop(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + ln.Addr().String()
	ln.Close() // the command listens there itself
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, append([]string{"bff", "--url", origin}, args...), nil, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() || !strings.Contains(lines.Text(), "authrefresh bff on "+origin) {
		t.Fatalf("banner: %q", lines.Text())
	}
	go io.Copy(io.Discard, pr)
	stop := sync.OnceFunc(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("bff exit %d", code)
		}
	})
	t.Cleanup(stop)
	return origin, stop
}

// loggedInBrowser is a cookie-keeping client logged in through the BFF at
// origin (the provider approves the demo user at once).
func loggedInBrowser(t *testing.T, origin string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(browser.CloseIdleConnections)
	resp, err := browser.Get(origin + "/bff/login?returnUrl=/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return browser, string(page)
}

// apiGet is the app's call: GET with the CSRF header.
func apiGet(t *testing.T, browser *http.Client, u string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-CSRF", "1")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// bff --redis: the sessions live in Redis, each record expiring an hour
// after the sessions' absolute lifetime (--max-age) at most, so that Redis
// does not keep the refresh tokens of sessions that ended unused.
func TestBFFCommandRedis(t *testing.T) {
	rd := redistest.Start(t)
	_, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte(authserver.DemoClientSecret+"\n"), 0o600)
	origin := startBFF(t, "--issuer", issuer, "--client-id", authserver.DemoClientID, "--client-secret-file", secret,
		"--api", "/api/="+issuer+"/api/v1/", "--redis", "redis://"+rd.Addr(), "--max-age", "2h")
	browser, _ := loggedInBrowser(t, origin)
	if status, _ := apiGet(t, browser, origin+"/api/me"); status != 200 {
		t.Fatalf("/api/me: %d", status)
	}
	rc := rd.Client(t)
	keys, err := rc.Keys(context.Background(), "*bff:*").Result()
	if err != nil || len(keys) < 3 {
		t.Fatalf("keys in Redis: %v (%v); want the session's, its token's and the login key's", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, ":lock") || strings.Contains(k, "lock}") {
			continue
		}
		if ttl := rc.PTTL(context.Background(), k).Val(); ttl <= 2*time.Hour || ttl > 3*time.Hour {
			t.Errorf("%s expires in %v; want within --max-age and an hour", k, ttl)
		}
	}
}
