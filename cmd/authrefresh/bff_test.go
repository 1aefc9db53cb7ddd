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
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// authrefresh bff in front of an app directory and the reference server's
// API: a browser logs in through the provider, loads the app and calls the
// API with only its cookie and the CSRF header.
func TestBFFCommand(t *testing.T) {
	srv, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser})
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte(authserver.DemoClientSecret+"\n"), 0o600)
	app := filepath.Join(dir, "app")
	os.Mkdir(app, 0o700)
	os.WriteFile(filepath.Join(app, "index.html"), []byte("<h1>products</h1>"), 0o600)
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
		done <- run(ctx, []string{"bff", "--issuer", issuer, "--client-id", authserver.DemoClientID, "--client-secret-file", secret,
			"--url", origin, "--api", "/api/=" + issuer + "/api/v1/", "--static", app}, nil, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() || !strings.Contains(lines.Text(), "authrefresh bff on "+origin) {
		t.Fatalf("banner: %q", lines.Text())
	}
	go io.Copy(io.Discard, pr)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.Get(origin + "/bff/login?returnUrl=/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "products") {
		t.Fatalf("after login: %d %s", resp.StatusCode, page)
	}
	req, _ := http.NewRequest(http.MethodGet, origin+"/api/me", nil)
	req.Header.Set("X-CSRF", "1")
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), authserver.DemoUser) || srv.Counters().Authorizations != 1 {
		t.Fatalf("/api/me: %d %s", resp.StatusCode, body)
	}
	browser.CloseIdleConnections()
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("bff exit %d", code)
	}
}

// A BFF's missing settings and a remote plain-http origin are refused
// before it listens.
func TestBFFCommandRefusals(t *testing.T) {
	for _, args := range [][]string{
		{"bff", "--client-id", "c", "--url", "http://127.0.0.1:1"},
		{"bff", "--issuer", "http://127.0.0.1:1", "--client-id", "c", "--url", "127.0.0.1:1"},
		{"bff", "--issuer", "http://127.0.0.1:1", "--client-id", "c", "--url", "http://127.0.0.1:1", "--api", "nodelimiter"},
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"bff", "--demo", "--url", origin}, nil, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() || !strings.Contains(lines.Text(), origin) {
		t.Fatalf("banner: %q", lines.Text())
	}
	go io.Copy(io.Discard, pr)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	for path, want := range map[string]string{"/": "<title>Products</title>", "/app.js": "X-CSRF"} {
		resp, err := browser.Get(origin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d %.80s", path, resp.StatusCode, body)
		}
	}
	resp, err := browser.Get(origin + "/bff/login?returnUrl=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, origin+"/api/data", nil)
	req.Header.Set("X-CSRF", "1")
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"items"`) {
		t.Fatalf("/api/data: %d %s", resp.StatusCode, body)
	}
	browser.CloseIdleConnections()
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("bff --demo exit %d", code)
	}
}
