package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
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
	_, issuer := authtest.StartIssuer(t, authserver.Config{})
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

// watcher is a stderr that hands each line matching a pattern to the test,
// as a user reads the terminal.
type watcher struct {
	mu    sync.Mutex
	buf   strings.Builder
	re    *regexp.Regexp
	found chan string
	sent  bool
}

func newWatcher(pattern string) *watcher {
	return &watcher{re: regexp.MustCompile(pattern), found: make(chan string, 1)}
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := w.re.FindStringSubmatch(w.buf.String()); m != nil && !w.sent {
		w.sent = true
		w.found <- m[1]
	}
	return len(p), nil
}

func (w *watcher) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.buf.String() }

// runAsync runs the command in-process in the background.
func runAsync(args []string, stderr io.Writer) <-chan int {
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), args, strings.NewReader(""), io.Discard, stderr) }()
	return done
}

// A user's browser login at a discovered provider: the URL is printed, the
// browser (here, the test) follows it, the profile then requests, refreshes
// with the refresh_token grant, and logs out by revoking at the provider.
func TestBrowserLoginProfile(t *testing.T) {
	srv, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser, Clients: map[string]string{"cli": ""}, AccessTTL: time.Minute})
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	stderr := newWatcher(`open this URL:\n  (\S+)\n`)
	done := runAsync([]string{"login", "--issuer", issuer, "--client-id", "cli", "--flow", "browser", "--no-browser", "--scope", "openid read", "--api", issuer + "/api/v1/", "--retry-status", "401,403"}, stderr)
	resp, err := http.Get(<-stderr.found)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if code := <-done; code != exitOK || !strings.Contains(string(page), "Logged in") {
		t.Fatalf("login: %d %s\npage: %s", code, stderr, page)
	}
	if code, out, errOut := cli(t, "", "request", "me"); code != exitOK || !strings.Contains(out, authserver.DemoUser) {
		t.Fatalf("request: %d %s %s", code, out, errOut)
	}
	srv.SetExpiredStatus(403)
	srv.RevokeAccessTokens()
	before := srv.Counters().Refreshes
	if code, _, errOut := cli(t, "", "request", "me"); code != exitOK || srv.Counters().Refreshes != before+1 {
		t.Fatalf("after a 403: %d %s (refreshes %d)", code, errOut, srv.Counters().Refreshes-before)
	}
	if code, _, errOut := cli(t, "", "logout"); code != exitOK || srv.Counters().Revocations != 1 {
		t.Fatalf("logout: %d %s, revocations %d", code, errOut, srv.Counters().Revocations)
	}
	code, _, errOut := cli(t, "", "request", "me")
	if code != exitLogin || !strings.Contains(errOut, "authrefresh login --client-id cli --issuer "+issuer+" --flow browser") {
		t.Fatalf("after logout: %d %s", code, errOut)
	}
}

// A device login: the code is shown, approved at the provider, and the
// profile works; a denied code exits 4 and says so.
func TestDeviceLoginProfile(t *testing.T) {
	srv, issuer := authtest.StartIssuer(t, authserver.Config{Clients: map[string]string{"cli": ""}, DeviceInterval: time.Second})
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	login := []string{"login", "--issuer", issuer, "--client-id", "cli", "--flow", "device", "--api", issuer + "/api/v1/"}
	stderr := newWatcher(`enter the code (\S+)`)
	done := runAsync(login, stderr)
	if !srv.ApproveDevice(<-stderr.found, authserver.DemoUser, false) {
		t.Fatal("the code shown is not pending")
	}
	if code := <-done; code != exitOK {
		t.Fatalf("login: %d %s", code, stderr)
	}
	if code, out, errOut := cli(t, "", "request", "me"); code != exitOK || !strings.Contains(out, authserver.DemoUser) {
		t.Fatalf("request: %d %s %s", code, out, errOut)
	}
	stderr = newWatcher(`enter the code (\S+)`)
	done = runAsync(login, stderr)
	srv.ApproveDevice(<-stderr.found, "", true)
	if code := <-done; code != exitLogin || !strings.Contains(stderr.String(), "denied") {
		t.Fatalf("denied: %d %s", code, stderr)
	}
}

// login --dpop: the device flow with a key made for the login, kept with
// the token in the sealed token file; request proves possession (the
// server's nonce, a refusal refreshed with the same key); the token is not
// handed out, since without its key it is useless.
func TestDPoPDeviceLoginProfile(t *testing.T) {
	srv, issuer := authtest.StartIssuer(t, authserver.Config{Clients: map[string]string{"cli": ""}, DeviceInterval: time.Second, DPoPNonce: true})
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	keys := filepath.Join(dir, "keys")
	if code, _, errOut := cli(t, "", "seal-key", keys); code != exitOK {
		t.Fatalf("keyring: %d %s", code, errOut)
	}
	login := []string{"login", "--issuer", issuer, "--client-id", "cli", "--flow", "device", "--dpop", "--seal-key", keys, "--api", issuer + "/api/v1/"}
	stderr := newWatcher(`enter the code (\S+)`)
	done := runAsync(login, stderr)
	if !srv.ApproveDevice(<-stderr.found, authserver.DemoUser, false) {
		t.Fatal("the code shown is not pending")
	}
	if code := <-done; code != exitOK {
		t.Fatalf("login: %d %s", code, stderr)
	}
	for round := range 2 {
		if code, out, errOut := cli(t, "", "request", "me"); code != exitOK || !strings.Contains(out, authserver.DemoUser) {
			t.Fatalf("round %d: request: %d %s %s", round, code, out, errOut)
		}
		srv.RevokeAccessTokens()
	}
	got := srv.Counters()
	if got.DPoPProofs == 0 || got.Refreshes != 1 || got.DPoPKeyMismatch != 0 || got.DPoPReplays != 0 || got.Unauthorized["dpop_bound"] != 0 {
		t.Fatalf("counters %+v", got)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "default.token.json"))
	if len(raw) == 0 || strings.Contains(string(raw), "dpop_key") {
		t.Fatalf("token file: %d bytes, key in the clear: %v", len(raw), strings.Contains(string(raw), "dpop_key"))
	}
	if code, out, _ := cli(t, "", "status"); code != exitOK || !strings.Contains(out, "bound to a key:        DPoP (the key is kept with the token)") || strings.Contains(out, `"d"`) {
		t.Fatalf("status: %d %s", code, out)
	}
	for _, output := range []string{"token", "header", "exec-credential"} {
		if code, out, errOut := cli(t, "", "token", "--output", output); code != exitUsage || out != "" || !strings.Contains(errOut, "DPoP-bound") {
			t.Fatalf("token --output %s: %d %q %s", output, code, out, errOut)
		}
	}
}

// private_key_jwt from the CLI: the key file is a JWK (as providers hand
// them out) or PEM, 0600; the profile names the file, never the key.
func TestClientKeyProfile(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, issuer := authtest.StartIssuer(t, authserver.Config{ClientKeys: map[string]crypto.PublicKey{"keyed": pub}})
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	b64 := base64.RawURLEncoding.EncodeToString
	jwk, _ := json.Marshal(map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "d": b64(priv.Seed()), "x": b64(pub)})
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	for name, data := range map[string][]byte{"key.jwk": jwk, "key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})} {
		file := filepath.Join(dir, name)
		os.WriteFile(file, data, 0o600)
		code, _, errOut := cli(t, "", "login", "--client-id", "keyed", "--issuer", issuer, "--client-key-file", file, "--profile", "keyed")
		if code != exitOK {
			t.Fatalf("%s: login: %d %s", name, code, errOut)
		}
		profile, _ := os.ReadFile(filepath.Join(dir, "keyed.profile.json"))
		if strings.Contains(string(profile), b64(priv.Seed())) || !strings.Contains(string(profile), file) {
			t.Fatalf("profile: %s", profile)
		}
		if code, out, errOut := cli(t, "", "request", "/api/v1/me", "--profile", "keyed"); code != exitOK || !strings.Contains(out, "keyed") {
			t.Fatalf("%s: request: %d %s %s", name, code, out, errOut)
		}
	}
	os.WriteFile(filepath.Join(dir, "public.jwk"), []byte(`{"kty":"OKP","crv":"Ed25519","x":"`+b64(pub)+`"}`), 0o600)
	code, _, errOut := cli(t, "", "login", "--client-id", "keyed", "--issuer", issuer, "--client-key-file", filepath.Join(dir, "public.jwk"))
	if code != exitUsage || !strings.Contains(errOut, "public key") {
		t.Fatalf("a public JWK: %d %s", code, errOut)
	}
}

// The password grant at a provider's token endpoint (--flow password): the
// password read from stdin, the session refreshed with the refresh_token
// grant afterwards; a wrong password exits 4.
func TestPasswordGrantProfile(t *testing.T) {
	srv, issuer := authtest.StartIssuer(t, authserver.Config{})
	dir := t.TempDir()
	t.Setenv("AUTHREFRESH_CONFIG_DIR", dir)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte(authserver.DemoClientSecret), 0o600)
	login := []string{"login", "--issuer", issuer, "--client-id", authserver.DemoClientID, "--client-secret-file", secret, "--flow", "password", "--username", "demo", "--password-stdin"}
	if code, _, errOut := cli(t, "nope\n", login...); code != exitLogin || !strings.Contains(errOut, "wrong username or password") {
		t.Fatalf("a wrong password: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, authserver.DemoPassword+"\n", login...); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	srv.RevokeAccessTokens()
	if code, out, errOut := cli(t, "", "request", "/api/v1/me"); code != exitOK || !strings.Contains(out, "demo") || srv.Counters().Refreshes != 1 {
		t.Fatalf("request: %d %s %s (refreshes %d)", code, out, errOut, srv.Counters().Refreshes)
	}
}

// spyingBrowser is the test binary run as $BROWSER. It finds the
// authorization URL it was given (on its command line, or in the page it
// was pointed at, which the user's own browser may read), then looks
// everywhere another local user could — every process's command line and
// environment, and the files under the temporary directory and the config
// directory that others may read — for the login's state or PKCE challenge,
// writes what it found to report, and completes the login.
func spyingBrowser(report string, args []string) int {
	var findings []string
	if len(args) != 1 {
		findings = append(findings, fmt.Sprintf("the browser got %d arguments", len(args)))
	}
	authURL := strings.Join(args, " ")
	if strings.HasPrefix(authURL, "file://") {
		u, _ := url.Parse(authURL)
		page, err := os.ReadFile(filepath.FromSlash(u.Path))
		if err != nil {
			findings = append(findings, "the user's browser cannot read its page: "+err.Error())
		}
		if m := regexp.MustCompile(`href="([^"]+)"`).FindSubmatch(page); m != nil {
			authURL = html.UnescapeString(string(m[1]))
		}
	}
	u, err := url.Parse(authURL)
	state, challenge := "", ""
	if err == nil {
		state, challenge = u.Query().Get("state"), u.Query().Get("code_challenge")
	}
	if state == "" || challenge == "" {
		findings = append(findings, "no authorization URL reached the browser: "+authURL)
	}
	secret := func(b []byte) bool {
		return state != "" && (bytes.Contains(b, []byte(state)) || bytes.Contains(b, []byte(challenge)))
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join(p, f)); err == nil && secret(b) {
				findings = append(findings, "the "+f+" of process "+filepath.Base(p))
			}
		}
	}
	// A file others can read: readable by group or others, under
	// directories they can enter.
	seen := 0
	for _, root := range []string{os.TempDir(), os.Getenv("AUTHREFRESH_CONFIG_DIR")} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if seen++; err != nil || seen > 200000 {
				return filepath.SkipDir
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if path != root && info.Mode().Perm()&0o011 == 0 {
					return filepath.SkipDir // others cannot enter
				}
				return nil
			}
			if info.Mode().IsRegular() && info.Mode().Perm()&0o044 != 0 && info.Size() < 1<<20 && time.Since(info.ModTime()) < time.Hour {
				if b, err := os.ReadFile(path); err == nil && secret(b) {
					findings = append(findings, "the file "+path+" ("+info.Mode().Perm().String()+")")
				}
			}
			return nil
		})
	}
	os.WriteFile(report, []byte(strings.Join(findings, "\n")), 0o600)
	if state != "" {
		if resp, err := http.Get(authURL); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	return 0
}

// Another local user learns nothing that lets them finish the login with
// their own account: the state and the PKCE challenge are on no command
// line, in no environment and in no file they can read, while the browser
// still gets to the provider and the login succeeds.
func TestBrowserLoginURLHiddenFromOtherUsers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	_, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser, Clients: map[string]string{"cli": ""}, AccessTTL: time.Minute})
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	report := filepath.Join(t.TempDir(), "report")
	t.Setenv("AUTHREFRESH_TEST_BROWSER_REPORT", report)
	t.Setenv("BROWSER", os.Args[0])
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"login", "--issuer", issuer, "--client-id", "cli", "--flow", "browser", "--scope", "openid"}, strings.NewReader(""), io.Discard, &stderr); code != exitOK {
		t.Fatalf("login: %d %s", code, stderr.String())
	}
	found, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("the browser did not run: %v", err)
	}
	if len(found) != 0 {
		t.Fatalf("another user could read the login's state or challenge in:\n%s", found)
	}
	if pages, _ := filepath.Glob(filepath.Join(os.TempDir(), "authrefresh-login-*")); len(pages) != 0 {
		t.Fatalf("the forwarding page outlived the login: %v", pages)
	}
}
