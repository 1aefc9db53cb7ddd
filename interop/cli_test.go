package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/oauth"
)

var cli program

// buildCLI builds the authrefresh command from the repository (in its own
// module, with its own go.sum) once per test binary.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin, err := cli.build("authrefresh", func(out string) *exec.Cmd {
		cmd := exec.Command("go", "build", "-o", out, "./cmd/authrefresh")
		cmd.Dir = ".."
		return cmd
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// authrefreshCmd is the CLI with its own config directory.
func authrefreshCmd(t *testing.T, config string, args ...string) *exec.Cmd {
	cmd := exec.Command(buildCLI(t), args...)
	cmd.Env = append(os.Environ(), "AUTHREFRESH_CONFIG_DIR="+config, "BROWSER=", "DISPLAY=")
	return cmd
}

// startProxy runs `authrefresh proxy` on a free loopback port and returns
// its URL; it is stopped at the test's end.
func startProxy(t *testing.T, config string, args ...string) string {
	t.Helper()
	cmd := authrefreshCmd(t, config, append([]string{"proxy", "--listen", "127.0.0.1:0", "--quiet"}, args...)...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := server(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	lines := bufio.NewScanner(out)
	on := regexp.MustCompile(`proxy on (http://\S+)`)
	for lines.Scan() {
		if m := on.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(io.Discard, out)
			return m[1]
		}
	}
	t.Fatal("the proxy exited before listening")
	return ""
}

// approvedLogin runs authrefresh login with args, for a flow that shows a
// device code (chosen, or the default without a display), and approves
// the code on the provider's page.
func approvedLogin(t *testing.T, config string, args ...string) {
	t.Helper()
	login := authrefreshCmd(t, config, append([]string{"login"}, args...)...)
	stderr, _ := login.StderrPipe()
	if err := server(login); err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile(`open (\S+) and enter the code (\S+)\n  \(or open (\S+)\)`)
	var seen strings.Builder
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		if m := shown.FindStringSubmatch(seen.String()); m != nil {
			approveDevice(t, oauth.DeviceCode{VerificationURI: m[1], UserCode: m[2], VerificationURIComplete: m[3]})
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if err := login.Wait(); err != nil {
		t.Fatalf("device login: %v\n%s", err, seen.String())
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The CLI against oidc-provider, as a user would run it: a device login
// (the code approved on the provider's page), then request and a sidecar
// proxy with that user's session; and a machine-to-machine profile whose
// sidecar acquires and renews client-credentials tokens, in front of a
// resource server that checks each token with the provider (RFC 7662
// introspection).
func TestOIDCProviderCLI(t *testing.T) {
	issuer := startOIDCProvider(t)
	config := t.TempDir()

	approvedLogin(t, config, "--issuer", issuer, "--client-id", "cli", "--scope", "openid api:read", "--api", issuer+"/")
	if out, err := authrefreshCmd(t, config, "request", "/me").CombinedOutput(); err != nil || !strings.Contains(string(out), "test-user") {
		t.Fatalf("request /me: %v %s", err, out)
	}
	proxy := startProxy(t, config, "--upstream", issuer)
	if status, body := get(t, proxy+"/me"); status != 200 || !strings.Contains(body, "test-user") {
		t.Fatalf("through the proxy: %d %s", status, body)
	}

	// Machine to machine: a resource server that asks the provider about
	// every token it is shown.
	var mu sync.Mutex
	seenTokens := map[string]bool{}
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, issuer+"/token/introspection", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("m2m-basic", "basic-secret-0123456789")
		resp, err := http.DefaultClient.Do(req)
		var info struct {
			Active   bool   `json:"active"`
			ClientID string `json:"client_id"`
		}
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
		}
		if !ok || !info.Active {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		seenTokens[token] = true
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"client_id": info.ClientID})
	}))
	defer rs.Close()
	secret := filepath.Join(config, "m2m.secret")
	os.WriteFile(secret, []byte("basic-secret-0123456789\n"), 0o600)
	if out, err := authrefreshCmd(t, config, "login", "--issuer", issuer, "--client-id", "m2m-basic", "--client-secret-file", secret,
		"--scope", "api:read", "--api", rs.URL+"/", "--profile", "m2m").CombinedOutput(); err != nil {
		t.Fatalf("client-credentials login: %v %s", err, out)
	}
	m2m := startProxy(t, config, "--profile", "m2m")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		if status, body := get(t, m2m+"/orders"); status != 200 || !strings.Contains(body, `"client_id":"m2m-basic"`) {
			t.Fatalf("client credentials through the proxy: %d %s", status, body)
		}
	}
	if len(seenTokens) != 1 {
		t.Fatalf("%d tokens for 20 requests; want the one", len(seenTokens))
	}
}
