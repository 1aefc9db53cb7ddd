package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A profile sealed with a keyring file: the token file holds no token, the
// commands work, a rotation keeps old tokens readable and seals new ones
// with the new key, a missing or loose keyring is a clear exit 6, and the
// keyring can also come from the environment.
func TestSealKeySealsProfiles(t *testing.T) {
	srv, url := startServer(t)
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	keys := filepath.Join(dir, "keys")
	code, out, errOut := cli(t, "", "seal-key", keys)
	if code != exitOK || !strings.Contains(out, "created "+keys) {
		t.Fatalf("keyring: %d %s %s", code, out, errOut)
	}
	if info, err := os.Stat(keys); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v %v", err, info)
	}
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin", "--seal-key", keys); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	tokenFile := filepath.Join(dir, "default.token.json")
	_, tok, _ := cli(t, "", "token")
	tok = strings.TrimSpace(tok)
	data, _ := os.ReadFile(tokenFile)
	if tok == "" || strings.Contains(string(data), tok) || !strings.Contains(string(data), `"sealed":1`) {
		t.Fatalf("token file: %s", data)
	}
	firstKey := keyID(t, data)

	// Rotate: the old token still opens; the next refresh seals with the new key.
	if code, out, _ := cli(t, "", "seal-key", keys); code != exitOK || !strings.Contains(out, "the 1 older key(s) still open") {
		t.Fatalf("rotate: %d %s", code, out)
	}
	if code, _, errOut := cli(t, "", "request", "me"); code != exitOK {
		t.Fatalf("after rotation: %d %s", code, errOut)
	}
	srv.RevokeAccessTokens()
	if code, _, errOut := cli(t, "", "request", "me"); code != exitOK {
		t.Fatalf("refresh after rotation: %d %s", code, errOut)
	}
	data, _ = os.ReadFile(tokenFile)
	if id := keyID(t, data); id == firstKey {
		t.Fatalf("the refreshed token is still sealed with the old key %s", id)
	}

	// The same keyring from the environment, for another profile.
	text, _ := os.ReadFile(keys)
	t.Setenv(keyringEnv, string(text))
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", url, "--username", "demo", "--password-stdin", "--seal-key", "env", "--profile", "env"); code != exitOK {
		t.Fatalf("login with an env keyring: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "request", "me", "--profile", "env"); code != exitOK {
		t.Fatalf("env keyring: %d %s", code, errOut)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "env.token.json")); !strings.Contains(string(data), `"sealed":1`) {
		t.Fatalf("env profile not sealed: %s", data)
	}
	t.Setenv(keyringEnv, "")
	if code, _, errOut := cli(t, "", "token", "--profile", "env"); code != exitConfig || !strings.Contains(errOut, "$"+keyringEnv+", which is not set") {
		t.Fatalf("env keyring unset: %d %s", code, errOut)
	}

	// A keyring others can read is refused; a missing one is named.
	os.Chmod(keys, 0o644)
	code, _, errOut = cli(t, "", "token")
	if code != exitConfig || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("loose keyring: %d %s", code, errOut)
	}
	os.Remove(keys)
	code, _, errOut = cli(t, "", "token")
	if code != exitConfig || !strings.Contains(errOut, "cannot use the seal keys") {
		t.Fatalf("missing keyring: %d %s", code, errOut)
	}

	// A keyring without the key the token was sealed with: exit 6, and how to fix it.
	if code, _, _ := cli(t, "", "seal-key", keys); code != exitOK {
		t.Fatal("new keyring")
	}
	code, _, errOut = cli(t, "", "token")
	if code != exitConfig || !strings.Contains(errOut, "which the keyring does not hold") || strings.Contains(errOut, tok) {
		t.Fatalf("foreign keyring: %d %s", code, errOut)
	}
}

func keyID(t *testing.T, record []byte) string {
	t.Helper()
	_, rest, ok := strings.Cut(string(record), `"kid":"`)
	id, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		t.Fatalf("no key ID in %s", record)
	}
	return id
}
