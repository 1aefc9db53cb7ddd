package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// x/oauth2 as a real third-party client: password grant, then its refresh
// TokenSource after expiry.
func TestOAuth2ClientUnchanged(t *testing.T) {
	s, hs, c := newTestServer(t, Config{})
	ctx := context.Background()
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := &oauth2.Config{ClientID: DemoClientID, ClientSecret: DemoClientSecret, Scopes: []string{"read", "write"},
			Endpoint: oauth2.Endpoint{TokenURL: hs.URL + "/oauth/token", AuthStyle: style}}
		tok, err := cfg.PasswordCredentialsToken(ctx, DemoUser, DemoPassword)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Expiry.IsZero() || tok.RefreshToken == "" || tok.Type() != "Bearer" {
			t.Fatalf("token %+v", tok)
		}
		c.Advance(3 * time.Second)
		tok.Expiry = time.Now().Add(-time.Second) // x/oauth2 dates by the real clock
		next, err := cfg.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatal(err)
		}
		if next.AccessToken == tok.AccessToken || next.RefreshToken == tok.RefreshToken {
			t.Fatal("x/oauth2 did not get a rotated token")
		}
		// (cfg.Client would refresh again: x/oauth2 treats any token within
		// 10s of expiry as expired, so 2-second tokens refresh on every call.)
		resp, err := oauth2.NewClient(ctx, oauth2.StaticTokenSource(next)).Get(hs.URL + "/api/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		var me map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&me)
		resp.Body.Close()
		if resp.StatusCode != 200 || me["sub"] != DemoUser || me["scope"] != "read write" {
			t.Fatalf("me: %d %v", resp.StatusCode, me)
		}
	}
	if got := s.Counters(); got.Refreshes != 2 || got.Logins != 2 {
		t.Fatalf("counters %+v", got)
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	resp, _ := http.Get(hs.URL + "/.well-known/jwks.json")
	var jwks struct{ Keys []map[string]string }
	_ = json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] != s.key.kid || jwks.Keys[0]["crv"] != "Ed25519" {
		t.Fatalf("jwks %v", jwks)
	}
	resp, _ = http.Get(hs.URL + "/.well-known/oauth-authorization-server")
	var meta map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["token_endpoint"] != hs.URL+"/oauth/token" || meta["issuer"] != "authrefresh" {
		t.Fatalf("metadata %v", meta)
	}
}

func TestClientCredentialsGrant(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{})
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", hs.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DemoClientID, DemoClientSecret)
	resp, _ := http.DefaultClient.Do(req)
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out["refresh_token"] != nil || resp.Header.Get("Cache-Control") != "no-store" || out["expires_in"] != float64(2) {
		t.Fatalf("%d %v %v", resp.StatusCode, out, resp.Header)
	}
}

func FuzzFormHandlers(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []string{"grant_type=password&username=demo&password=demo-password", "grant_type=refresh_token&refresh_token=x", "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret", "token=x&token_type_hint=refresh_token", "%%", "a=1&a=2",
		"grant_type=authorization_code&code=x&code_verifier=y&redirect_uri=http://127.0.0.1/cb&client_id=demo-client",
		"grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x&client_id=demo-client",
		"grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c",
		"response_type=code&client_id=demo-client&redirect_uri=http://127.0.0.1:1/cb&code_challenge=abc&code_challenge_method=S256&state=s"} {
		f.Add(seed, "")
		f.Add(seed, "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=")
	}
	f.Fuzz(func(t *testing.T, body, auth string) {
		for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/device_authorization"} {
			rec := serve(s, "POST", path, "application/x-www-form-urlencoded", body, auth)
			// The one 5xx by design: past MaxPendingFlows device grants
			// (the fuzzer makes one per valid request), a 503
			// temporarily_unavailable until they expire.
			if rec.Code == http.StatusServiceUnavailable && path == "/oauth/device_authorization" && strings.Contains(rec.Body.String(), "temporarily_unavailable") {
				continue
			}
			if rec.Code >= 500 {
				t.Fatalf("%s answered %d to %q", path, rec.Code, body)
			}
		}
		// The authorization endpoint reads the same parameters from its query.
		req := httptest.NewRequest("GET", "/oauth/authorize", nil)
		req.URL.RawQuery = body
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusFound && rec.Code != http.StatusBadRequest {
			t.Fatalf("/oauth/authorize answered %d to %q", rec.Code, body)
		}
	})
}
