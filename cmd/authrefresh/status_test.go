package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// status lists every profile with its provider, flow, identity, expiries,
// store and sealing, as text or JSON, from the stores alone: no refresh,
// no request, and never a token.
func TestStatus(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	if code, _, errOut := cli(t, "", "status"); code != exitLogin || !strings.Contains(errOut, "no profiles") {
		t.Fatalf("status with no profile: %d %s", code, errOut)
	}
	srv, api := startServer(t)
	for _, args := range [][]string{
		{"login", "--url", api, "--username", "demo", "--password-stdin"},
		{"login", "--url", api, "--username", "demo", "--password-stdin", "--profile", "work"},
	} {
		if code, _, errOut := cli(t, "demo-password\n", args...); code != exitOK {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
	}
	if code, _, errOut := cli(t, "", "logout", "--profile", "work"); code != exitOK {
		t.Fatalf("logout: %d %s", code, errOut)
	}
	p, _ := loadProfile("default")
	tokenFile, _ := os.ReadFile(p.TokenFile)
	var stored struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(tokenFile, &stored)
	requests := srv.Counters().Requests

	code, out, errOut := cli(t, "", "status")
	if code != exitOK || !strings.Contains(out, "default: valid") || !strings.Contains(out, "work: not logged in") ||
		!strings.Contains(out, "identity:") || !strings.Contains(out, "demo") || !strings.Contains(out, "file "+p.TokenFile) ||
		!strings.Contains(out, "access token expires:") || !strings.Contains(out, "sealed:") {
		t.Fatalf("status: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = cli(t, "", "status", "--output", "json")
	var all []profileStatus
	if code != exitOK || json.Unmarshal([]byte(out), &all) != nil || len(all) != 2 || all[0].Profile != "default" || all[0].State != "valid" || all[0].AccessExpires == "" {
		t.Fatalf("status --output json: %d %s", code, out)
	}
	if code, _, errOut := cli(t, "", "status", "--profile", "work"); code != exitLogin || !strings.Contains(errOut, "log in") {
		t.Fatalf("status of a logged-out profile: %d %s", code, errOut)
	}
	for _, secret := range []string{stored.AccessToken, stored.RefreshToken} {
		if secret == "" || strings.Contains(out, secret) {
			t.Fatal("status printed a token (or none was stored)")
		}
	}
	after := srv.Counters().Requests
	for path, n := range after {
		if n != requests[path] {
			t.Fatalf("status sent a request to %s", path)
		}
	}
}

// A Redis URL is shown without its password.
func TestStatusHidesRedisPassword(t *testing.T) {
	if got := redisShown("redis://user:s3cret@127.0.0.1:6379/0"); strings.Contains(got, "s3cret") || !strings.Contains(got, "127.0.0.1:6379") {
		t.Fatalf("shown as %q", got)
	}
}
