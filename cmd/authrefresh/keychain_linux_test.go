package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// (Linux only: the Secret Service is reached over D-Bus, which a test can
// take away; macOS and Windows always have a keychain.)
// Where no keychain answers, login --keychain says so and keeps the token
// in its 0600 file, which then works as any profile.
func TestKeychainFallsBackToFile(t *testing.T) {
	if os.Getenv("AUTHREFRESH_TEST_NO_KEYCHAIN") != "1" {
		// A process of its own: the D-Bus connection of an earlier test
		// stays open for the life of the process that made it.
		cmd := exec.Command(os.Args[0], "-test.run=^TestKeychainFallsBackToFile$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "AUTHREFRESH_TEST_NO_KEYCHAIN=1", "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(t.TempDir(), "no-bus"))
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestKeychainFallsBackToFile") {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	_, url := startServer(t)
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin", "--keychain")
	if code != exitOK || !strings.Contains(errOut, "no OS keychain answers here") || !strings.Contains(errOut, "(0600) instead") {
		t.Fatalf("login: %d %s", code, errOut)
	}
	if info, err := os.Stat(filepath.Join(dir, "default.token.json")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the token file: %v %v", info, err)
	}
	if code, out, errOut := cli(t, "", "request", "me"); code != exitOK || !strings.Contains(out, "demo") {
		t.Fatalf("request: %d %s %s", code, out, errOut)
	}
}
