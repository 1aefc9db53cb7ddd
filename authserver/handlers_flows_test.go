package authserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// authorize sends an authorization request and returns the redirect's
// query (nil if the server answered without redirecting) and the status.
func authorize(t *testing.T, base string, q url.Values) (url.Values, int) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, resp.StatusCode
	}
	loc, _ := resp.Location()
	return loc.Query(), resp.StatusCode
}

func tokenForm(t *testing.T, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The authorization endpoint: loopback redirects only, PKCE S256 required,
// a code used once, by the client it was issued to, with its verifier.
func TestAuthorizationCodeWithPKCE(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{AutoApproveUser: DemoUser, Clients: map[string]string{"cli": "", DemoClientID: DemoClientSecret}})
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	req := url.Values{"response_type": {"code"}, "client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1:4711/cb"}, "state": {"st"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "scope": {"openid read"}, "nonce": {"n1"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range req {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	if _, status := authorize(t, hs.URL, with("redirect_uri", "https://evil.example/cb")); status != http.StatusBadRequest {
		t.Fatalf("a remote redirect_uri: %d", status)
	}
	if _, status := authorize(t, hs.URL, with("client_id", "nobody")); status != http.StatusBadRequest {
		t.Fatalf("an unknown client: %d", status)
	}
	if back, _ := authorize(t, hs.URL, with("code_challenge_method", "plain")); back.Get("error") != "invalid_request" || back.Get("state") != "st" {
		t.Fatalf("plain PKCE: %v", back)
	}
	back, _ := authorize(t, hs.URL, req)
	code := back.Get("code")
	if code == "" || back.Get("state") != "st" || back.Get("iss") == "" {
		t.Fatalf("redirect: %v", back)
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1:4711/cb"}, "code_verifier": {verifier}}
	wrong := url.Values{}
	for k, v := range exchange {
		wrong[k] = v
	}
	wrong.Set("code_verifier", strings.Repeat("w", 43))
	if status, out := tokenForm(t, hs.URL, wrong); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("a wrong verifier: %d %v", status, out)
	}
	// The failed attempt used the code up (one attempt per code).
	if status, out := tokenForm(t, hs.URL, exchange); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("a code tried twice: %d %v", status, out)
	}
	back, _ = authorize(t, hs.URL, req)
	exchange.Set("code", back.Get("code"))
	status, out := tokenForm(t, hs.URL, exchange)
	if status != 200 || out["refresh_token"] == nil || out["id_token"] == nil {
		t.Fatalf("exchange: %d %v", status, out)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(out["id_token"].(string), ".")[1])
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil || claims["nonce"] != "n1" || claims["aud"] != "cli" || claims["sub"] != DemoUser {
		t.Fatalf("id_token claims %s", payload)
	}
}

// Device codes: pending until approved through the control API, then one
// token answer; unknown user codes are a 404.
func TestDeviceControl(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{EnableControlAPI: true})
	resp, err := http.PostForm(hs.URL+"/oauth/device_authorization", url.Values{"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var da map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&da)
	resp.Body.Close()
	poll := url.Values{"grant_type": {deviceGrantType}, "device_code": {da["device_code"].(string)}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}
	if status, out := tokenForm(t, hs.URL, poll); status != 400 || out["error"] != "slow_down" {
		t.Fatalf("an immediate poll: %d %v", status, out)
	}
	if status, _, _ := postJSON(t, hs.URL+"/_control/device", `{"user_code":"NOPE-NOPE","user":"demo"}`); status != 404 {
		t.Fatalf("unknown user code: %d", status)
	}
	if status, _, _ := postJSON(t, hs.URL+"/_control/device", `{"user_code":"`+strings.ToLower(da["user_code"].(string))+`","user":"demo"}`); status != 204 {
		t.Fatalf("approve: %d", status)
	}
}
