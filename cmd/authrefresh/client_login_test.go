package main

import (
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh/authserver"
)

// A machine-to-machine profile: login with a client id and a secret file
// gets a first token (and keeps only the file's path), token and request
// work, a refused token is replaced, and a wrong secret or a loose secret
// file is a clear setting to fix.
func TestClientCredentialsProfile(t *testing.T) {
	srv, url := startServer(t)
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(authserver.DemoClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	login := []string{"login", "--client-id", authserver.DemoClientID, "--token-url", url + "/oauth/token", "--client-secret-file", secretFile, "--scope", "read", "--api", url + "/api/v1/", "--profile", "m2m"}
	code, _, errOut := cli(t, "", login...)
	if code != exitOK || !strings.Contains(errOut, "got a token") {
		t.Fatalf("login: %d %s", code, errOut)
	}
	profile, _ := os.ReadFile(filepath.Join(dir, "m2m.profile.json"))
	if strings.Contains(string(profile), authserver.DemoClientSecret) || !strings.Contains(string(profile), secretFile) {
		t.Fatalf("profile: %s", profile)
	}
	code, tok, _ := cli(t, "", "token", "--profile", "m2m")
	if code != exitOK || strings.Count(strings.TrimSpace(tok), ".") != 2 {
		t.Fatalf("token: %d %q", code, tok)
	}
	code, out, errOut := cli(t, "", "request", "me", "--profile", "m2m")
	if code != exitOK || !strings.Contains(out, authserver.DemoClientID) {
		t.Fatalf("request: %d %s %s", code, out, errOut)
	}
	before := srv.Counters().Requests["/oauth/token"]
	srv.RevokeAccessTokens()
	if code, _, errOut := cli(t, "", "request", "me", "--profile", "m2m"); code != exitOK {
		t.Fatalf("after revocation: %d %s", code, errOut)
	}
	if n := srv.Counters().Requests["/oauth/token"] - before; n != 1 {
		t.Fatalf("%d token requests to replace a refused token; want 1", n)
	}

	// A wrong secret: exit 6, said as the client's settings.
	os.WriteFile(secretFile, []byte("wrong-secret"), 0o600)
	code, _, errOut = cli(t, "", login...)
	if code != exitConfig || !strings.Contains(errOut, "does not accept this client") || strings.Contains(errOut, "wrong-secret") {
		t.Fatalf("wrong secret: %d %s", code, errOut)
	}
	// A secret file others can read: refused before any request.
	os.Chmod(secretFile, 0o644)
	code, _, errOut = cli(t, "", login...)
	if code != exitUsage || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("loose secret file: %d %s", code, errOut)
	}
	// Neither or both of --issuer and --token-url.
	if code, _, errOut := cli(t, "", "login", "--client-id", "x", "--client-secret-file", secretFile); code != exitUsage || !strings.Contains(errOut, "--issuer") {
		t.Fatalf("no endpoint: %d %s", code, errOut)
	}
}

// With --issuer, the token endpoint is discovered from the provider's
// metadata.
func TestClientCredentialsProfileDiscovered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	srv, err := authserver.New(authserver.Config{Issuer: issuer, PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	defer hs.Close()
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	secretFile := filepath.Join(dir, "client-secret")
	os.WriteFile(secretFile, []byte(authserver.DemoClientSecret), 0o600)
	code, _, errOut := cli(t, "", "login", "--client-id", authserver.DemoClientID, "--issuer", issuer, "--client-secret-file", secretFile)
	if code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	profile, _ := os.ReadFile(filepath.Join(dir, "default.profile.json"))
	if !strings.Contains(string(profile), `"token_url": "`+issuer+`/oauth/token"`) {
		t.Fatalf("profile: %s", profile)
	}
	if code, _, errOut := cli(t, "", "login", "--client-id", authserver.DemoClientID, "--issuer", issuer+"/nowhere", "--client-secret-file", secretFile); code != exitConfig || !strings.Contains(errOut, "discovery of") || !strings.Contains(errOut, "check --issuer") {
		t.Fatalf("wrong issuer: %d %s", code, errOut)
	}
}
