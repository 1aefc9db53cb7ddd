package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// startServer is the shared harness's reference server, on the real clock:
// the commands under test read it.
func startServer(t *testing.T) (*authserver.Server, string) {
	t.Helper()
	s := authtest.StartRealClock(t, authserver.Config{AccessTTL: 30 * time.Second})
	return s.Auth, s.URL
}

// cli runs the command in-process.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func revokeStoredRefreshToken(t *testing.T, srv *authserver.Server) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(os.Getenv("AUTHREFRESH_CONFIG_DIR"), "default.token.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(data), `"refresh_token": "`)
	rt, _, _ := strings.Cut(after, `"`)
	if !srv.RevokeRefreshToken(rt) {
		t.Fatal("stored refresh token unknown to the server")
	}
}

// Two real processes on one profile, across a revocation, refresh once.
func TestConcurrentProcessesRefreshOnce(t *testing.T) {
	bin := binary(t)
	srv, url := startServer(t)
	env := append(os.Environ(), "AUTHREFRESH_CONFIG_DIR="+t.TempDir())
	login := exec.Command(bin, "login", "--url", url, "--username", "demo", "--password-stdin")
	login.Env, login.Stdin = env, strings.NewReader("demo-password\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("login: %v %s", err, out)
	}
	for round := 0; round < 4; round++ {
		if round < 2 {
			srv.RevokeAccessTokens() // refused: the 401 path
		} else {
			expireStoredToken(t, env) // expired on the client: the refresh-before-sending path
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		outs := make([][]byte, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(bin, "request", "POST", "data", "--data", `{"name":"p","price":1}`)
				cmd.Env = env
				outs[i], errs[i] = cmd.CombinedOutput()
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d process %d: %v %s", round, i, err, outs[i])
			}
		}
		if got := srv.Counters(); got.Refreshes != uint64(round+1) || got.ReuseDetections != 0 {
			t.Fatalf("round %d: refreshes=%d reuse=%d, want one refresh per round", round, got.Refreshes, got.ReuseDetections)
		}
	}
	if n := len(srv.Products()); n != 16 {
		t.Fatalf("%d products, want 16", n)
	}
}

// expireStoredToken rewrites the profile's token as already expired.
func expireStoredToken(t *testing.T, env []string) {
	t.Helper()
	var dir string
	for _, kv := range env {
		if d, ok := strings.CutPrefix(kv, "AUTHREFRESH_CONFIG_DIR="); ok {
			dir = d
		}
	}
	fs := filestore.New(filepath.Join(dir, "default.token.json"))
	tok, err := fs.Load(context.Background())
	if err != nil || tok == nil {
		t.Fatalf("stored token: %v %v", tok, err)
	}
	tok.IssuedAt, tok.Expiry = time.Now().Add(-time.Minute), time.Now().Add(-time.Second)
	if err := fs.Save(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

// The real binary, as a user runs it: exit codes and messages.
func TestBinaryEndToEnd(t *testing.T) {
	bin := binary(t)
	srv, url := startServer(t)
	env := append(os.Environ(), "AUTHREFRESH_CONFIG_DIR="+t.TempDir())
	exe := func(stdin string, args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), out.String(), errOut.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errOut.String()
	}
	steps := []struct {
		stdin    string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{"", []string{"request", "data"}, exitLogin, "", "authrefresh login"},
		{"demo-password\n", []string{"login", "--url", url, "--username", "demo", "--password-stdin"}, exitOK, "", "logged in"},
		{"", []string{"request", "data"}, exitOK, `"total"`, ""},
		{`{"name":"From stdin","price":3}`, []string{"request", "POST", "data", "--data", "@-"}, exitOK, `"From stdin"`, ""},
		{"", []string{"request", "POST", "data", "--data", `{"price":0}`}, exitHTTP, "", "could not post data: invalid product [400]"},
		{"", []string{"request", "nope"}, exitHTTP, "", "[404]"},
		{"", []string{"token"}, exitOK, ".", ""},
		{"", []string{"version"}, exitOK, "authrefresh", ""},
		{"", []string{"request", "--help"}, exitOK, "", "Examples:"},
	}
	for _, s := range steps {
		code, out, errOut := exe(s.stdin, s.args...)
		if code != s.code || !strings.Contains(out, s.inStdout) || !strings.Contains(errOut, s.inStderr) {
			t.Fatalf("%v: exit %d (want %d)\nstdout: %s\nstderr: %s", s.args, code, s.code, out, errOut)
		}
	}
	// The refresh token dies server-side: exit 4 with a hint.
	srv.RevokeAccessTokens()
	revokeStoredRefreshTokenIn(t, srv, env)
	if code, _, errOut := exe("", "request", "me"); code != exitLogin || !strings.Contains(errOut, "session expired") {
		t.Fatalf("expired: %d %s", code, errOut)
	}
	if code, _, _ := exe("", "logout"); code != exitOK {
		t.Fatalf("logout: %d", code)
	}
	// A dead auth server is a network error, exit 5.
	exe("demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin")
	if code, _, _ := exe("demo-password\n", "login", "--url", "http://127.0.0.1:1", "--username", "demo", "--password-stdin"); code != exitNetwork {
		t.Fatalf("dead server: exit %d, want %d", code, exitNetwork)
	}
}

func revokeStoredRefreshTokenIn(t *testing.T, srv *authserver.Server, env []string) {
	t.Helper()
	for _, kv := range env {
		if dir, ok := strings.CutPrefix(kv, "AUTHREFRESH_CONFIG_DIR="); ok {
			t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
		}
	}
	revokeStoredRefreshToken(t, srv)
}

// request processes SIGKILLed at random around refreshes (a slow refresh
// endpoint widens the window), then one more: with the server's grace
// period, nobody is logged out and no refresh token is reused; and no
// temporary file holding a token is left behind once a process saves again.
func TestSigkillStorm(t *testing.T) {
	bin := binary(t)
	as := authtest.StartRealClock(t, authserver.Config{AccessTTL: 30 * time.Second, GracePeriod: 10 * time.Second})
	as.Auth.SetRefreshLatency(50 * time.Millisecond)
	dir := t.TempDir()
	env := append(os.Environ(), "AUTHREFRESH_CONFIG_DIR="+dir)
	login := exec.Command(bin, "login", "--url", as.URL, "--username", "demo", "--password-stdin")
	login.Env, login.Stdin = env, strings.NewReader("demo-password\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("login: %v %s", err, out)
	}
	killed := 0
	for round := 0; round < 12; round++ {
		as.Auth.RevokeAccessTokens() // every request must refresh
		refreshesBefore := as.Auth.Counters().Refreshes
		cmd := exec.Command(bin, "request", "me")
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once its refresh reached the server (its rotation may or
		// may not have been saved): the server's counter is the signal.
		for i := 0; i < 200 && as.Auth.Counters().Requests["/auth/refresh"] <= uint64(round)+refreshesBefore; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(round%5) * 15 * time.Millisecond) // before, during or after the save
		if cmd.Process.Kill() == nil {
			killed++
		}
		_ = cmd.Wait()
	}
	as.Auth.RevokeAccessTokens()
	final := exec.Command(bin, "request", "me")
	final.Env = env
	if out, err := final.CombinedOutput(); err != nil {
		t.Fatalf("after %d kills: %v %s", killed, err, out)
	}
	if got := as.Auth.Counters(); got.ReuseDetections != 0 {
		t.Fatalf("reuse detections %d", got.ReuseDetections)
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(temps) != 0 {
		t.Fatalf("%d temporary files left holding a token: %v", len(temps), temps)
	}
	t.Logf("%d processes killed around refreshes; %d refreshes, %d grace replays, 0 reuse, 0 temporary files left", killed, as.Auth.Counters().Refreshes, as.Auth.Counters().GraceReplays)
}

// The JSON endpoints' paths are settings: a login path of another API, a
// refresh path kept in the profile and used.
func TestLoginPaths(t *testing.T) {
	srv, url := startServer(t)
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin", "--login-path", "/v2/signin"); code != exitConfig || !strings.Contains(errOut, url+"/v2/signin") {
		t.Fatalf("a wrong login path: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin", "--refresh-path", "/auth/refresh-token"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	srv.RevokeAccessTokens()
	if code, _, errOut := cli(t, "", "request", "me"); code != exitOK || srv.Counters().Requests["/auth/refresh-token"] != 1 {
		t.Fatalf("refresh through the configured path: %d %s %v", code, errOut, srv.Counters().Requests)
	}
	if code, _, _ := cli(t, "", "login", "--url", url, "--refresh-path", "auth/x"); code != exitUsage {
		t.Fatalf("a path without /: %d", code)
	}
}

// request -i prints the status line and headers before the body, as curl
// -i; -v prints the request's and the answer's headers on stderr, as curl
// -v: neither ever shows the token.
func TestRequestIncludeAndVerbose(t *testing.T) {
	_, _, token := loggedIn(t)
	code, out, errOut := cli(t, "", "request", "-i", "me")
	if code != exitOK || !strings.HasPrefix(out, "HTTP/1.1 200 OK\n") || !strings.Contains(out, "\nContent-Type: application/json") || !strings.Contains(out, "\n\n{") {
		t.Fatalf("request -i: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, "", "request", "-v", "me", "-H", "X-Trace: 1")
	for _, want := range []string{"> GET /api/v1/me HTTP/1.1", "> Authorization: [the profile's token, not shown]", "> X-Trace: 1", "< HTTP/1.1 200 OK", "< Content-Type: application/json"} {
		if code != exitOK || !strings.Contains(errOut, want) {
			t.Fatalf("request -v lacks %q: %d\n%s", want, code, errOut)
		}
	}
	if token == "" || strings.Contains(out+errOut, token) {
		t.Fatal("request -v showed the token (or none was found)")
	}
}

// token --output: the bare token, an Authorization header, JSON, or the
// ExecCredential kubectl reads, in the apiVersion client-go asks for.
func TestTokenOutputs(t *testing.T) {
	_, _, bare := loggedIn(t)
	if _, out, _ := cli(t, "", "token", "--output", "header"); out != "Authorization: Bearer "+bare+"\n" {
		t.Fatalf("--output header: %q", out)
	}
	var asJSON struct {
		AccessToken string `json:"access_token"`
		Expiry      string `json:"expiry"`
	}
	if _, out, _ := cli(t, "", "token", "--output", "json"); json.Unmarshal([]byte(out), &asJSON) != nil || asJSON.AccessToken != bare || asJSON.Expiry == "" {
		t.Fatalf("--output json: %s", out)
	}
	for info, want := range map[string]string{
		"": "client.authentication.k8s.io/v1",
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}`: "client.authentication.k8s.io/v1beta1",
	} {
		t.Setenv("KUBERNETES_EXEC_INFO", info)
		_, out, errOut := cli(t, "", "token", "--output", "exec-credential")
		var cred struct {
			Kind, APIVersion string
			Status           struct {
				Token               string
				ExpirationTimestamp time.Time
			}
		}
		if json.Unmarshal([]byte(out), &cred) != nil || cred.Kind != "ExecCredential" || cred.APIVersion != want || cred.Status.Token != bare || cred.Status.ExpirationTimestamp.IsZero() {
			t.Fatalf("exec-credential for %q: %s %s", info, out, errOut)
		}
	}
	t.Setenv("KUBERNETES_EXEC_INFO", `{"apiVersion":"client.authentication.k8s.io/v2"}`)
	if code, _, errOut := cli(t, "", "token", "--output", "exec-credential"); code != exitUsage || !strings.Contains(errOut, "v1beta1") {
		t.Fatalf("an unknown apiVersion: %d %s", code, errOut)
	}
	if code, _, _ := cli(t, "", "token", "--output", "yaml"); code != exitUsage {
		t.Fatalf("--output yaml: %d", code)
	}
}

// loggedIn starts a reference server, logs the default profile in to it as
// demo in a config directory of the test's own, and returns the server, its
// URL and the profile's access token.
func loggedIn(t *testing.T) (srv *authserver.Server, api, token string) {
	t.Helper()
	srv, api = startServer(t)
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", api, "--username", "demo", "--password-stdin"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	_, token, _ = cli(t, "", "token")
	return srv, api, strings.TrimSpace(token)
}

// request --output writes a 2xx body to a 0600 file as it came; an error
// answer still goes to stdout, and an unwritable file is a setting to fix.
func TestRequestOutputFile(t *testing.T) {
	loggedIn(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "me.json")
	if code, out, errOut := cli(t, "", "request", "me", "--output", file); code != exitOK || out != "" {
		t.Fatalf("request --output: %d %q %s", code, out, errOut)
	}
	data, err := os.ReadFile(file)
	info, _ := os.Stat(file)
	if err != nil || !strings.Contains(string(data), `"demo"`) || info.Mode().Perm() != 0o600 {
		t.Fatalf("the file: %q %v, mode %v", data, err, info.Mode())
	}
	if code, out, _ := cli(t, "", "request", "no/such/path", "--output", filepath.Join(dir, "err.json")); code != exitHTTP || out == "" {
		t.Fatalf("an error answer: %d %q, want exit %d and its body on stdout", code, out, exitHTTP)
	}
	if _, err := os.Stat(filepath.Join(dir, "err.json")); err == nil {
		t.Fatal("an error answer was written to the --output file")
	}
	if code, _, errOut := cli(t, "", "request", "me", "--output", filepath.Join(dir, "no", "such", "dir", "me.json")); code != exitConfig || !strings.Contains(errOut, "--output") {
		t.Fatalf("an unwritable --output: %d %s", code, errOut)
	}
}
