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
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/oauth"
)

var hydraServer program

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
	script, _ := filepath.Abs("hydra/build.sh")
	bin, err := hydraServer.build("hydra", func(out string) *exec.Cmd {
		cmd := exec.Command("bash", script, out)
		cmd.Dir = filepath.Dir(out)
		return cmd
	})
	if err != nil {
		unavailable(t, err.Error())
	}
	pub, adm := freePort(t), freePort(t)
	h := &hydra{issuer: fmt.Sprintf("http://127.0.0.1:%d/", pub), admin: fmt.Sprintf("http://127.0.0.1:%d", adm)}
	app := httptest.NewServer(http.HandlerFunc(h.loginAndConsent))
	t.Cleanup(app.Close)
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(), "DSN=memory", "LOG_LEVEL=error", "URLS_SELF_ISSUER="+h.issuer,
		"URLS_LOGIN="+app.URL+"/login", "URLS_CONSENT="+app.URL+"/consent",
		fmt.Sprintf("SERVE_PUBLIC_PORT=%d", pub), "SERVE_PUBLIC_HOST=127.0.0.1", fmt.Sprintf("SERVE_ADMIN_PORT=%d", adm), "SERVE_ADMIN_HOST=127.0.0.1",
		"TTL_ACCESS_TOKEN="+accessTTL.String(), "TTL_REFRESH_TOKEN=1h", "SECRETS_SYSTEM=interop-tests-system-secret-0123456789")
	cmd.Stderr = os.Stderr
	if err := server(cmd); err != nil {
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
	md, err := oauth.Discover(ctx, nil, h.issuer)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := h.client(t, map[string]any{"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": "openid offline_access", "redirect_uris": []string{"http://127.0.0.1/callback"}})
	grants := &grantCounter{}
	client := &oauth.Config{TokenURL: md.TokenEndpoint, RevocationURL: md.RevocationEndpoint, ClientID: id,
		Scopes: []string{"openid", "offline_access"}, HTTPClient: &http.Client{Transport: grants, Timeout: 10 * time.Second}}

	t.Run("browser login, load, revocation", func(t *testing.T) {
		tok := loginInBrowserAt(t, md, client, "")
		if tok.RefreshToken == "" || tok.IDToken == "" {
			t.Fatalf("token %+v", tok)
		}
		s := authrefresh.NewSession(nil, client, authrefresh.Options{})
		s.Login(ctx, tok)
		base := &http.Transport{MaxIdleConnsPerHost: 200}
		defer base.CloseIdleConnections()
		api := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}, Timeout: 30 * time.Second} // a provider under -race can hold a request for seconds
		r := callUnderLoad(api, md.UserinfoEndpoint, 200, 3*ttl+ttl/2)
		checkLoad(t, "hydra", r, grants.count("refresh_token"), tok.ExpiresIn)

		cur, _ := s.Token(ctx)
		endsOnceAfterRevocation(t, client, cur, client)
	})

	t.Run("client credentials", func(t *testing.T) {
		id, secret := h.client(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_basic", "scope": "api:read"})
		count := &counting{path: strings.TrimPrefix(md.TokenEndpoint, strings.TrimSuffix(h.issuer, "/"))}
		cc := &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, ClientSecret: secret, Scopes: []string{"api:read"}, HTTPClient: &http.Client{Transport: count}}
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
		bad := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, ClientSecret: "wrong"}, authrefresh.Options{})
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
		s := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, Scopes: []string{"api:read"},
			Key: &oauth.ClientKey{Signer: key, KeyID: "k1"}}, authrefresh.Options{})
		tok, err := s.Token(ctx)
		if err != nil {
			t.Fatalf("private_key_jwt: %v", err)
		}
		if next, err := s.Refused(ctx, tok); err != nil || next.AccessToken == tok.AccessToken {
			t.Fatalf("a second assertion (a new jti): %v", err)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		forged := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: id, Key: &oauth.ClientKey{Signer: other, KeyID: "k1"}}, authrefresh.Options{})
		if _, err := forged.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) {
			t.Fatalf("another key's assertion: %v", err)
		}
	})
}
