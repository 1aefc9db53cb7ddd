package interop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

var (
	hydraOnce sync.Once
	hydraBin  string
	hydraErr  error
)

// hydra is a running Ory Hydra: its public issuer and its admin API.
type hydra struct {
	issuer, admin string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startHydra builds Hydra once (interop/hydra/build.sh) and runs it in
// memory on loopback, with login and consent handled by a small app of the
// test's that accepts every request as test-user through the admin API.
func startHydra(t *testing.T, accessTTL time.Duration) *hydra {
	t.Helper()
	hydraOnce.Do(func() {
		dir, err := os.MkdirTemp("", "authrefresh-hydra")
		if err != nil {
			hydraErr = err
			return
		}
		hydraBin = filepath.Join(dir, "hydra")
		script, _ := filepath.Abs("hydra/build.sh")
		cmd := exec.Command("bash", script, hydraBin)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			hydraErr = &buildError{out: string(out), err: err}
		}
	})
	if hydraErr != nil {
		if os.Getenv("AUTHREFRESH_REQUIRE_INTEROP") == "1" {
			t.Fatal(hydraErr)
		}
		t.Skip(hydraErr)
	}
	pub, adm := freePort(t), freePort(t)
	h := &hydra{issuer: fmt.Sprintf("http://127.0.0.1:%d/", pub), admin: fmt.Sprintf("http://127.0.0.1:%d", adm)}
	app := httptest.NewServer(http.HandlerFunc(h.loginAndConsent))
	t.Cleanup(app.Close)
	cmd := exec.Command(hydraBin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(), "DSN=memory", "LOG_LEVEL=error", "URLS_SELF_ISSUER="+h.issuer,
		"URLS_LOGIN="+app.URL+"/login", "URLS_CONSENT="+app.URL+"/consent",
		fmt.Sprintf("SERVE_PUBLIC_PORT=%d", pub), "SERVE_PUBLIC_HOST=127.0.0.1", fmt.Sprintf("SERVE_ADMIN_PORT=%d", adm), "SERVE_ADMIN_HOST=127.0.0.1",
		"TTL_ACCESS_TOKEN="+accessTTL.String(), "TTL_REFRESH_TOKEN=1h", "SECRETS_SYSTEM=interop-tests-system-secret-0123456789")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ { // until the admin API answers: its readiness is the only signal it gives
		resp, err := http.Get(h.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 300 {
			t.Fatal("hydra did not become ready in 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h
}

// adminJSON calls the admin API.
func (h *hydra) adminJSON(method, path string, in, out any) error {
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, h.admin+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// loginAndConsent is the login and consent app: every login is test-user,
// every consent grants what was asked.
func (h *hydra) loginAndConsent(w http.ResponseWriter, r *http.Request) {
	var redirect struct {
		RedirectTo string `json:"redirect_to"`
	}
	var err error
	switch r.URL.Path {
	case "/login":
		challenge := r.URL.Query().Get("login_challenge")
		err = h.adminJSON("PUT", "/admin/oauth2/auth/requests/login/accept?login_challenge="+challenge, map[string]any{"subject": "test-user"}, &redirect)
	case "/consent":
		challenge := r.URL.Query().Get("consent_challenge")
		var asked struct {
			RequestedScope    []string `json:"requested_scope"`
			RequestedAudience []string `json:"requested_access_token_audience"`
		}
		if err = h.adminJSON("GET", "/admin/oauth2/auth/requests/consent?consent_challenge="+challenge, nil, &asked); err == nil {
			err = h.adminJSON("PUT", "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+challenge,
				map[string]any{"grant_scope": asked.RequestedScope, "grant_access_token_audience": asked.RequestedAudience}, &redirect)
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, redirect.RedirectTo, http.StatusFound)
}

// client registers an OAuth2 client and returns its id and secret.
func (h *hydra) client(t *testing.T, spec map[string]any) (id, secret string) {
	t.Helper()
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := h.adminJSON("POST", "/admin/clients", spec, &out); err != nil {
		t.Fatal(err)
	}
	return out.ClientID, out.ClientSecret
}

// Ory Hydra v2.3.0: discovery, browser login with PKCE through its login
// and consent redirects, 200 callers of userinfo over 3.5 lifetimes with
// rotation, revocation ending the session once, client credentials with a
// secret and with private_key_jwt.
func TestHydra(t *testing.T) {
	const ttl = 3 * time.Second
	h := startHydra(t, ttl)
	ctx := context.Background()
	md, err := authrefresh.Discover(ctx, nil, h.issuer)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := h.client(t, map[string]any{"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": "openid offline_access", "redirect_uris": []string{"http://127.0.0.1/callback"}})
	grants := &grantCounter{}
	client := &authrefresh.OAuth2Refresher{TokenURL: md.TokenEndpoint, RevocationURL: md.RevocationEndpoint, ClientID: id,
		Scopes: []string{"openid", "offline_access"}, HTTPClient: &http.Client{Transport: grants, Timeout: 10 * time.Second}}

	t.Run("browser login, load, revocation", func(t *testing.T) {
		tok := loginInBrowserAt(t, md, client, "")
		if tok.RefreshToken == "" || tok.IDToken == "" {
			t.Fatalf("token %+v", tok)
		}
		var ended atomic.Int64
		s := authrefresh.NewSession(nil, client, authrefresh.Options{OnSessionExpired: func(error) { ended.Add(1) }})
		s.Login(ctx, tok)
		base := &http.Transport{MaxIdleConnsPerHost: 200}
		defer base.CloseIdleConnections()
		api := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}, Timeout: 10 * time.Second}
		began := time.Now()
		end := began.Add(3*ttl + ttl/2)
		var calls, failures atomic.Int64
		var first atomic.Value
		var wg sync.WaitGroup
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					resp, err := api.Get(md.UserinfoEndpoint)
					calls.Add(1)
					if err != nil || resp.StatusCode != 200 {
						if failures.Add(1) == 1 {
							first.Store(errors.Join(err, statusErr(resp)))
						}
					}
					if resp != nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(began)
		refreshes, expiries := grants.count("refresh_token"), float64(elapsed)/float64(ttl)
		t.Logf("hydra userinfo: %d calls by 200 callers in %v (%.1f access-token lifetimes): %d refreshes, %d failures",
			calls.Load(), elapsed.Round(time.Millisecond), expiries, refreshes, failures.Load())
		if failures.Load() != 0 {
			t.Fatalf("%d of %d calls failed; first: %v", failures.Load(), calls.Load(), first.Load())
		}
		if refreshes < int(expiries) || float64(refreshes) > float64(elapsed)/(0.65*float64(tok.ExpiresIn))+1 {
			t.Fatalf("%d refreshes over %.1f lifetimes", refreshes, expiries)
		}
		cur, _ := s.Token(ctx)
		if err := client.Revoke(ctx, cur); err != nil {
			t.Fatalf("revocation: %v", err)
		}
		errs := make(chan error, 50)
		for range 50 {
			go func() { _, err := s.Refresh(ctx, cur); errs <- err }()
		}
		for range 50 {
			if err := <-errs; !errors.Is(err, authrefresh.ErrSessionExpired) {
				t.Fatalf("after revocation: %v", err)
			}
		}
		if ended.Load() != 1 {
			t.Fatalf("OnSessionExpired %d times", ended.Load())
		}
	})

	t.Run("client credentials", func(t *testing.T) {
		id, secret := h.client(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_basic", "scope": "api:read"})
		count := &counting{path: strings.TrimPrefix(md.TokenEndpoint, strings.TrimSuffix(h.issuer, "/"))}
		cc := &authrefresh.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, ClientSecret: secret, Scopes: []string{"api:read"}, HTTPClient: &http.Client{Transport: count}}
		s := authrefresh.NewSession(nil, cc, authrefresh.Options{})
		toks := make(chan *authrefresh.Token, 40)
		for range 40 {
			go func() { tok, _ := s.Token(ctx); toks <- tok }()
		}
		for range 40 {
			if tok := <-toks; tok == nil {
				t.Fatal("no token")
			}
		}
		if count.n.Load() != 1 {
			t.Fatalf("%d token requests for 40 callers", count.n.Load())
		}
		bad := authrefresh.NewSession(nil, &authrefresh.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, ClientSecret: "wrong"}, authrefresh.Options{})
		if _, err := bad.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) {
			t.Fatalf("a wrong secret: %v", err)
		}
	})

	t.Run("private_key_jwt", func(t *testing.T) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, _ := key.PublicKey.ECDH()
		raw := pub.Bytes()
		b64 := base64.RawURLEncoding.EncodeToString
		id, _ := h.client(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
			"token_endpoint_auth_signing_alg": "ES256", "scope": "api:read",
			"jwks": map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64(raw[1:33]), "y": b64(raw[33:])}}}})
		s := authrefresh.NewSession(nil, &authrefresh.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, Scopes: []string{"api:read"},
			Key: &authrefresh.ClientKey{Signer: key, KeyID: "k1"}}, authrefresh.Options{})
		tok, err := s.Token(ctx)
		if err != nil {
			t.Fatalf("private_key_jwt: %v", err)
		}
		if next, err := s.Refresh(ctx, tok); err != nil || next.AccessToken == tok.AccessToken {
			t.Fatalf("a second assertion (a new jti): %v", err)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		forged := authrefresh.NewSession(nil, &authrefresh.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, Key: &authrefresh.ClientKey{Signer: other, KeyID: "k1"}}, authrefresh.Options{})
		if _, err := forged.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) {
			t.Fatalf("another key's assertion: %v", err)
		}
	})
}
