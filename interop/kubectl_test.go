package interop

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubectl's way to a token: client-go's own exec authenticator runs
// `authrefresh token --output exec-credential` and sends what it prints to
// an API that accepts only a valid access token (the reference server's
// /api/v1/me). 20 kubectl-style invocations at once after the token expired
// (each its own authenticator, hence its own plugin process) make one
// refresh at the provider: the profile's file lock. A refresh token revoked
// at the provider makes the plugin fail, and client-go says so.
func TestKubectlExecCredential(t *testing.T) {
	cli := buildCLI(t)
	srv, api, config := referenceProfile(t, 2*time.Second)
	// invocation is one kubectl run: a config of its own, so that
	// client-go's authenticator cache does not share one plugin result.
	invocation := func(i int) (int, error) {
		cfg := &rest.Config{Host: api, ExecProvider: &clientcmdapi.ExecConfig{
			APIVersion: "client.authentication.k8s.io/v1", Command: cli, Args: []string{"token", "--output", "exec-credential"},
			Env:             []clientcmdapi.ExecEnvVar{{Name: "AUTHREFRESH_CONFIG_DIR", Value: config}, {Name: "INVOCATION", Value: fmt.Sprint(i)}},
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		}}
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Get(api + "/api/v1/me")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if status, err := invocation(-1); err != nil || status != 200 {
		t.Fatalf("client-go with the plugin: %d %v", status, err)
	}
	// The user `authrefresh kubeconfig` prints, loaded by client-go's own
	// kubeconfig loader, works as it is (client-go reads a kubeconfig user
	// only for an https cluster: the same API behind TLS).
	stanza, err := authrefreshCmd(t, config, "kubeconfig").Output()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	tlsAPI := httptest.NewTLSServer(srv)
	defer tlsAPI.Close()
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsAPI.Certificate().Raw}))
	kubeconfig := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " + tlsAPI.URL + "\n    certificate-authority-data: " + ca +
		"\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: authrefresh-default\ncurrent-context: x\n" + string(stanza)
	fromFile, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig))
	if err != nil || fromFile.ExecProvider == nil {
		t.Fatalf("client-go finds no exec plugin in what kubeconfig printed (%v):\n%s", err, stanza)
	}
	hc, err := rest.HTTPClientFor(fromFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(tlsAPI.URL + "/api/v1/me")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("through the printed kubeconfig user: %v %v", resp, err)
	}
	resp.Body.Close()

	// Let the token expire (2 s), then 20 invocations at once.
	stored := func() (refresh string, expiry time.Time) {
		var tok struct {
			RefreshToken string    `json:"refresh_token"`
			Expiry       time.Time `json:"expiry"`
		}
		data, _ := os.ReadFile(filepath.Join(config, "default.token.json"))
		json.Unmarshal(data, &tok)
		return tok.RefreshToken, tok.Expiry
	}
	_, expiry := stored()
	if expiry.IsZero() || time.Until(expiry) > 5*time.Second {
		t.Fatalf("the stored token's expiry: %v", expiry)
	}
	time.Sleep(time.Until(expiry) + 200*time.Millisecond) // a token's lifetime passing, not a synchronisation
	before := srv.Counters().Refreshes
	began := time.Now()
	var wg sync.WaitGroup
	failures := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, err := invocation(i); err != nil || status != 200 {
				failures <- fmt.Errorf("invocation %d: %d %v", i, status, err)
			}
		}()
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	refreshes := srv.Counters().Refreshes - before
	t.Logf("kubectl: 20 parallel invocations of the exec plugin after the token expired: %d call(s) to the provider, %v", refreshes, time.Since(began).Round(time.Millisecond))
	if refreshes != 1 {
		t.Fatalf("%d refreshes for 20 invocations at an expiry; want 1", refreshes)
	}

	// The refresh token revoked at the provider: once the access token
	// expires, the plugin fails and client-go reports it.
	refresh, expiry := stored()
	if !srv.RevokeRefreshToken(refresh) {
		t.Fatal("the stored refresh token was not live")
	}
	time.Sleep(time.Until(expiry) + 200*time.Millisecond)
	status, err := invocation(100)
	if err == nil || !strings.Contains(err.Error(), "exit code 4") {
		t.Fatalf("after revocation: %d %v; want the plugin's failure (exit code 4)", status, err)
	}
}

// referenceProfile runs the reference server (access tokens of ttl) on
// 127.0.0.1 for the test, logs a profile in to it with the CLI as demo in a
// config directory of the test's own (extra: more login flags), and returns
// the server, its URL and the directory.
func referenceProfile(t *testing.T, ttl time.Duration, extra ...string) (*authserver.Server, string, string) {
	t.Helper()
	srv, err := authserver.New(authserver.Config{AccessTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	config := t.TempDir()
	login := authrefreshCmd(t, config, append([]string{"login", "--url", hs.URL, "--username", "demo", "--password-stdin"}, extra...)...)
	login.Stdin = strings.NewReader("demo-password\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	return srv, hs.URL, config
}
