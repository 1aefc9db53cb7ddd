package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --profile is declared once for every command that takes it, with
// $AUTHREFRESH_PROFILE as its default.
func TestProfileFlagEverywhere(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	t.Setenv("AUTHREFRESH_PROFILE", "work")
	for _, name := range []string{"login", "request", "token", "logout", "proxy"} {
		_, _, errOut := cli(t, "", name, "--help")
		if !strings.Contains(errOut, "-profile") || !strings.Contains(errOut, `(default "work")`) {
			t.Errorf("%s --help: no --profile defaulting to $AUTHREFRESH_PROFILE:\n%s", name, errOut)
		}
	}
	if code, _, errOut := cli(t, "", "token"); code != exitLogin || !strings.Contains(errOut, `"work"`) {
		t.Errorf("token with AUTHREFRESH_PROFILE=work: %d %s", code, errOut)
	}
}

// The profile commands end to end: login, GET, POST, a 400 with details,
// token, refresh after revocation, session expiry, logout — with exit codes.
func TestProfileCommands(t *testing.T) {
	srv, url := startServer(t)
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	info, err := os.Stat(filepath.Join(os.Getenv("AUTHREFRESH_CONFIG_DIR"), "default.token.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", err, info)
	}
	if code, out, _ := cli(t, "", "request", "data"); code != exitOK || !strings.Contains(out, `"items"`) {
		t.Fatalf("GET: %d %s", code, out)
	}
	if code, out, errOut := cli(t, "", "request", "POST", "data", "--data", `{"name":"Widget","price":2.5}`); code != exitOK || !strings.Contains(out, `"Widget"`) {
		t.Fatalf("POST: %d %s %s", code, out, errOut)
	}
	code, _, errOut := cli(t, "", "request", "POST", "data", "--data", `{"name":"","price":-1}`)
	if code != exitHTTP || !strings.Contains(errOut, "could not post data: invalid product [400]") || !strings.Contains(errOut, "price: must be a positive number") {
		t.Fatalf("400: %d %q", code, errOut)
	}
	code, tok, _ := cli(t, "", "token")
	if code != exitOK || strings.Count(strings.TrimSpace(tok), ".") != 2 {
		t.Fatalf("token: %d %q", code, tok)
	}
	srv.RevokeAccessTokens()
	if code, _, errOut := cli(t, "", "request", "me"); code != exitOK {
		t.Fatalf("after revocation: %d %s", code, errOut)
	}
	if srv.Counters().Refreshes != 1 {
		t.Fatalf("refreshes %d", srv.Counters().Refreshes)
	}
	// Kill the session server-side: exit code 4 and a hint to log in.
	_, fresh, _ := cli(t, "", "token")
	if fresh == tok {
		t.Fatal("token did not change after the refresh")
	}
	for _, p := range []string{"default"} {
		data, _ := os.ReadFile(filepath.Join(os.Getenv("AUTHREFRESH_CONFIG_DIR"), p+".token.json"))
		if strings.Contains(string(data), strings.TrimSpace(tok)) {
			t.Fatal("the old token is still stored")
		}
	}
	srv.RevokeAccessTokens()
	revokeStoredRefreshToken(t, srv)
	code, _, errOut = cli(t, "", "request", "me")
	if code != exitLogin || !strings.Contains(errOut, "log in again") {
		t.Fatalf("expired: %d %s", code, errOut)
	}
	if code, _, _ := cli(t, "", "logout"); code != exitOK {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := cli(t, "", "token"); code != exitLogin {
		t.Fatalf("token after logout: %d", code)
	}
	if code, _, _ := cli(t, "", "login", "--url", url, "--username", "demo"); code != exitUsage {
		t.Fatalf("password prompt without a terminal must be a usage error, got %d", code)
	}
}
