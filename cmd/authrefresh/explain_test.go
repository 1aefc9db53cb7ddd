package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh"

	"github.com/authrefresh/authrefresh/internal/tmpfs"
)

// What the user reads says what happened to them, once, with one hint that
// names the profile's real URL, and an exit code that tells the kinds apart.
func TestMessagesSayWhatHappened(t *testing.T) {
	_, url := startServer(t)
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()

	check := func(name string, code, wantCode int, errOut string, want ...string) {
		t.Helper()
		if code != wantCode {
			t.Errorf("%s: exit %d, want %d: %s", name, code, wantCode, errOut)
		}
		for _, w := range want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: %q lacks %q", name, errOut, w)
			}
		}
		for _, bad := range []string{"authrefresh: authrefresh:", `Get "`, `Post "`, "--url URL", "refresh rejected"} {
			if strings.Contains(errOut, bad) {
				t.Errorf("%s: %q contains %q", name, errOut, bad)
			}
		}
		if n := strings.Count(errOut, "authrefresh login"); n > 1 {
			t.Errorf("%s: %d login hints in %q", name, n, errOut)
		}
	}
	code, _, errOut := cli(t, "wrong-password\n", "login", "--url", url, "--username", "demo", "--password-stdin")
	check("wrong password", code, exitLogin, errOut, "wrong username or password")
	code, _, errOut = cli(t, "demo-password\n", "login", "--url", notFound.URL, "--username", "demo", "--password-stdin")
	check("404 login URL", code, exitConfig, errOut, notFound.URL+"/auth/login", "404", "--url")

	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin", "--profile", "work"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	tokenFile := filepath.Join(os.Getenv("AUTHREFRESH_CONFIG_DIR"), "work.token.json")
	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, "", "request", "me", "--profile", "work")
	check("token file readable by others", code, exitConfig, errOut, "token file", "chmod 600")
	_ = os.Chmod(tokenFile, 0o600)

	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, "", "request", "me", "--profile", "work")
	check("not logged in", code, exitLogin, errOut, "not logged in", "authrefresh login --url "+url+" --username demo --profile work")
}

// A flag error is printed once with a one-line hint, not around the whole
// usage; --help shows the flags without misleading argument names.
func TestFlagErrorsOnce(t *testing.T) {
	code, _, errOut := cli(t, "", "login", "--nope")
	if code != exitUsage || strings.Count(errOut, "flag provided but not defined") != 1 || strings.Contains(errOut, "Flags:") || !strings.Contains(errOut, "authrefresh login --help") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	code, _, errOut = cli(t, "", "login", "--help")
	if code != exitOK || strings.Contains(errOut, "-api request") || !strings.Contains(errOut, "-api string") {
		t.Fatalf("login --help: %d %q", code, errOut)
	}
}

// request takes a path from the host as curl and the proxy do ("/api/v1/me"),
// or relative to the API base ("me"); a lone method is a usage error.
func TestRequestPaths(t *testing.T) {
	_, url := startServer(t)
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	for _, path := range []string{"me", "/api/v1/me"} {
		if code, out, errOut := cli(t, "", "request", path); code != exitOK || !strings.Contains(out, "demo") {
			t.Errorf("request %s: %d %s %s", path, code, out, errOut)
		}
	}
	if code, _, errOut := cli(t, "", "request", "GET"); code != exitUsage || !strings.Contains(errOut, "needs a PATH") {
		t.Errorf("request GET: %d %q", code, errOut)
	}
	if code, _, errOut := cli(t, "", "request", "FETCH", "me"); code != exitUsage || !strings.Contains(errOut, "not an HTTP method") {
		t.Errorf("request FETCH me: %d %q", code, errOut)
	}
}

// version names the Go version of the build, not just "dev".
func TestVersionFromBuildInfo(t *testing.T) {
	if code, out, _ := cli(t, "", "version"); code != exitOK || !strings.Contains(out, "built with go") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// serve on every interface says so.
func TestServeWarnsOnEveryInterface(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // listen, warn, and stop at once
	var out, errOut strings.Builder
	run(ctx, []string{"serve", "--addr", ":0"}, nil, &out, &errOut)
	if !strings.Contains(errOut.String(), "every network interface") {
		t.Fatalf("no warning: %q", errOut.String())
	}
}

// On a full disk, a command whose token was refreshed does its work, then
// says that the rotated token could not be saved and what to do, and exits
// non-zero; it leaves no temporary file holding a token.
func TestFullDiskIsNeverSilent(t *testing.T) {
	dir := tmpfs.Mount(t, 64<<10)
	srv, url := startServer(t)
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	filler, _ := os.Create(filepath.Join(dir, "filler"))
	_, _ = filler.Write(make([]byte, 64<<10)) // fills the disk (short write expected)
	filler.Close()
	srv.RevokeAccessTokens() // the next request is refused: refresh, replay, save
	code, out, errOut := cli(t, "", "request", "me")
	if code != exitConfig || !strings.Contains(out, "demo") || !strings.Contains(errOut, "could not be saved") || !strings.Contains(errOut, "no space left") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(temps) != 0 {
		t.Fatalf("temporary files left: %v", temps)
	}
}

// A client the auth server does not accept is a setting to fix (exit 6),
// said as such, not a lost session.
func TestMisconfiguredClientExplained(t *testing.T) {
	err := &authrefresh.RefreshError{Kind: authrefresh.RefreshMisconfigured, StatusCode: 401, Code: "invalid_client", Description: "unknown client"}
	code, msg := explain(err)
	if code != exitConfig || !strings.Contains(msg, "does not accept this client") || !strings.Contains(msg, "invalid_client") || strings.Contains(msg, "log in") {
		t.Fatalf("%d %q", code, msg)
	}
}

// A provider's words reach the terminal without what could steer it: its
// error and error_description carry a window title, a clipboard write and a
// screen clear; none of them reaches stderr, the words around them do.
func TestProviderTextSteersNoTerminal(t *testing.T) {
	hostile := "bad\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\u009b2J\u202eend"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client" + hostile, "error_description": hostile})
	}))
	defer srv.Close()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	for _, args := range [][]string{
		{"login", "--url", srv.URL, "--username", "demo", "--password-stdin"},
		{"login", "--token-url", srv.URL + "/token", "--client-id", "c", "--flow", "password", "--username", "demo", "--password-stdin"},
	} {
		code, _, errOut := cli(t, "pw\n", args...)
		if code == exitOK || strings.ContainsAny(errOut, "\x1b\x07\u009b\u202e") || !strings.Contains(errOut, "bad") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// A mistake of the user's own is reported as one, with the exit code for a
// setting to fix (6), never as a server that is down for now (5): a port
// already taken, an https URL for a plain-HTTP server, a host name that
// does not resolve, a URL whose server does not implement logins. A token
// withheld from another origin is explained.
func TestLocalMistakesAreNotOutages(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if code, _, errOut := cli(t, "", "serve", "--addr", taken.Addr().String()); code != exitConfig || !strings.Contains(errOut, "already in use") || strings.Contains(errOut, "try again later") {
		t.Errorf("serve on a taken port: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "proxy", "--listen", taken.Addr().String(), "--upstream", "http://127.0.0.1:9"); code == exitNetwork || strings.Contains(errOut, "try again later") {
		t.Errorf("proxy on a taken port: %d %s", code, errOut)
	}

	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	if code, _, errOut := cli(t, "pw\n", "login", "--url", strings.Replace(plain.URL, "http:", "https:", 1), "--username", "u", "--password-stdin"); code != exitConfig || !strings.Contains(errOut, "plain HTTP") {
		t.Errorf("https to a plain-HTTP server: %d %s", code, errOut)
	}
	notImplemented := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotImplemented) }))
	defer notImplemented.Close()
	if code, _, errOut := cli(t, "pw\n", "login", "--url", notImplemented.URL, "--username", "u", "--password-stdin"); code != exitConfig || !strings.Contains(errOut, "not a login endpoint") {
		t.Errorf("a login URL answering 501: %d %s", code, errOut)
	}
	if code, msg := explain(fmt.Errorf("could not log in: %w", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "api.exmaple.com", IsNotFound: true}})); code != exitConfig || !strings.Contains(msg, "check the host name") {
		t.Errorf("an unknown host: %d %s", code, msg)
	}
	if _, msg := explain(authrefresh.Transient(errors.New("connection refused"))); strings.Contains(msg, "may pass") {
		t.Errorf("library jargon reached the user: %s", msg)
	}

	_, api, _ := loggedIn(t)
	other := strings.Replace(api, "127.0.0.1", "localhost", 1)
	code, _, errOut := cli(t, "", "request", other+"/api/v1/me")
	if code != exitHTTP || !strings.Contains(errOut, "the token was not sent: it goes only to "+api) || !strings.Contains(errOut, other) {
		t.Errorf("a request to another origin: %d %s", code, errOut)
	}
}

// The small frictions of a first day: the fix command carries what the
// profile knows; a URL without its scheme gets the URL it meant; the
// keyring does not create directories up to /; the remote-listen advice
// is whole; an error status still prints the answer's body on stdout, and
// JSON on a pipe ends with a newline.
func TestFirstDayFrictions(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	if code, _, errOut := cli(t, "", "login", "--url", "127.0.0.1:8080", "--username", "u", "--password-stdin"); code != exitUsage || !strings.Contains(errOut, "did you mean http://127.0.0.1:8080?") {
		t.Errorf("--url without a scheme: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "login", "--issuer", "id.example.com", "--client-id", "cli"); code != exitUsage || !strings.Contains(errOut, "did you mean https://id.example.com?") {
		t.Errorf("--issuer without a scheme: %d %s", code, errOut)
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "k")
	if code, _, errOut := cli(t, "", "seal-key", missing); code != exitUsage || !strings.Contains(errOut, "does not exist") {
		t.Errorf("keyring in a missing directory: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Error("keyring created the missing directories")
	}
	if code, _, errOut := cli(t, "", "proxy", "--listen", "0.0.0.0:0", "--upstream", "http://127.0.0.1:9"); code != exitUsage || !strings.Contains(errOut, "--client-secret-file") || !strings.Contains(errOut, "--allow-remote") {
		t.Errorf("remote listen advice: %d %s", code, errOut)
	}

	loggedIn(t)
	code, out, _ := cli(t, "", "request", "POST", "data", "--data", `{"name":""}`)
	if code != exitHTTP || !strings.HasPrefix(out, "{") || !strings.HasSuffix(out, "}\n") {
		t.Errorf("an error status: exit %d, stdout %q (want the JSON body with a final newline)", code, out)
	}
	p, err := loadProfile("default")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.loginCommand("default"); !strings.Contains(got, "--username demo") {
		t.Errorf("the fix command leaves out the username: %s", got)
	}
}
