package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"
)

// requireKeychain is the real OS keychain, or a skip where none answers
// (a failure under AUTHREFRESH_REQUIRE_KEYCHAIN=1, as .ci/run sets when it
// runs these tests in a D-Bus session with gnome-keyring).
func requireKeychain(t *testing.T) {
	t.Helper()
	if err := keychainReachable(); err != nil {
		if os.Getenv("AUTHREFRESH_REQUIRE_KEYCHAIN") == "1" {
			t.Fatal(err)
		}
		t.Skipf("%v: run under a keychain (Linux: dbus-run-session with gnome-keyring-daemon --unlock)", err)
	}
}

// login --keychain with the real OS keychain: no token file, the item
// holds the token (sealed with --seal-key), request and refresh go through
// it, status names it, logout removes it.
func TestKeychainProfile(t *testing.T) {
	requireKeychain(t)
	srv, url := startServer(t)
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	keys := filepath.Join(dir, "seal-keys")
	if code, _, errOut := cli(t, "", "seal-key", keys); code != exitOK {
		t.Fatalf("seal-key: %d %s", code, errOut)
	}
	for _, c := range []struct {
		profile string
		sealed  bool
	}{{"plain", false}, {"sealed", true}} {
		login := []string{"login", "--url", url, "--username", "demo", "--password-stdin", "--keychain", "--profile", c.profile}
		if c.sealed {
			login = append(login, "--seal-key", keys)
		}
		if code, _, errOut := cli(t, "demo-password\n", login...); code != exitOK {
			t.Fatalf("%s: login: %d %s", c.profile, code, errOut)
		}
		tokenPath := filepath.Join(dir, c.profile+".token.json")
		if _, err := os.Stat(tokenPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: a token file: %v", c.profile, err)
		}
		item, err := keyring.Get(keychainService, tokenPath)
		if err != nil || strings.Contains(item, "access_token") == c.sealed {
			t.Fatalf("%s: the keychain item (%d bytes, sealed: %v): %v", c.profile, len(item), !strings.Contains(item, "access_token"), err)
		}
		srv.RevokeAccessTokens()
		if code, out, errOut := cli(t, "", "request", "me", "--profile", c.profile); code != exitOK || !strings.Contains(out, "demo") {
			t.Fatalf("%s: request: %d %s %s", c.profile, code, out, errOut)
		}
		if after, _ := keyring.Get(keychainService, tokenPath); after == item {
			t.Fatalf("%s: the refreshed token was not saved in the keychain", c.profile)
		}
		if code, out, _ := cli(t, "", "status", "--profile", c.profile); code != exitOK || !strings.Contains(out, "the OS keychain") {
			t.Fatalf("%s: status: %d %s", c.profile, code, out)
		}
		if code, _, errOut := cli(t, "", "logout", "--profile", c.profile); code != exitOK {
			t.Fatalf("%s: logout: %d %s", c.profile, code, errOut)
		}
		if _, err := keyring.Get(keychainService, tokenPath); !errors.Is(err, keyring.ErrNotFound) {
			t.Fatalf("%s: after logout the item is still there: %v", c.profile, err)
		}
	}
	if code, _, errOut := cli(t, "", "login", "--url", url, "--keychain", "--redis", "redis://127.0.0.1:1/0", "--session", "s"); code != exitUsage || !strings.Contains(errOut, "choose one") {
		t.Fatalf("--keychain with --redis: %d %s", code, errOut)
	}
}
