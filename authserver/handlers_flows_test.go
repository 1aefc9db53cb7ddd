package authserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
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

// Client credentials for a named audience: the server's own API, or an
// invalid_target that says which audience it serves.
func TestClientCredentialsAudience(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}, "scope": {"read"}, "audience": {"authrefresh-api"}}
	if status, out := tokenForm(t, hs.URL, form); status != 200 || out["scope"] != "read" {
		t.Fatalf("the server's audience: %d %v", status, out)
	}
	form.Set("audience", "https://other.example")
	if status, out := tokenForm(t, hs.URL, form); status != 400 || out["error"] != "invalid_target" || !strings.Contains(out["error_description"].(string), "authrefresh-api") {
		t.Fatalf("another audience: %d %v", status, out)
	}
}

// Anonymous requests cannot make the server hold unbounded state: every
// field of a pending flow is bounded, the flows in number, and expired
// ones are dropped on time, not only when used.
func TestPendingFlowsBounded(t *testing.T) {
	s, hs, clock := newTestServer(t, Config{AutoApproveUser: DemoUser, Clients: map[string]string{"cli": ""}, MaxPendingFlows: 5})
	sum := sha256.Sum256([]byte(strings.Repeat("v", 43)))
	good := func() url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1:4711/cb"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "scope": {"openid"}, "nonce": {"n"}}
	}
	big := strings.Repeat("x", 100<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, change := range []func(url.Values){
		func(q url.Values) { q.Set("nonce", big) },
		func(q url.Values) { q.Set("scope", big) },
		func(q url.Values) { q.Set("code_challenge", big) },
		func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:4711/"+big) },
	} {
		for n := 0; n < 50; n++ {
			q := good()
			change(q)
			if back, status := authorize(t, hs.URL, q); status == http.StatusFound && back.Get("error") != "invalid_request" {
				t.Fatalf("oversized field %d: answered %v", i, back)
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("200 authorization requests with a 100-KiB field: %d pending, heap %+d KiB", s.PendingFlows(), (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>10)
	if s.PendingFlows() != 0 || after.HeapAlloc > before.HeapAlloc+8<<20 {
		t.Fatalf("%d flows pending, heap grew %d KiB after refused requests", s.PendingFlows(), (after.HeapAlloc-before.HeapAlloc)>>10)
	}
	resp, err := http.PostForm(hs.URL+"/oauth/device_authorization", url.Values{"client_id": {"cli"}, "scope": {big}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || s.PendingFlows() != 0 {
		t.Fatalf("a device authorization with a 100-KiB scope: %d, %d pending", resp.StatusCode, s.PendingFlows())
	}

	for i := 0; i < 5; i++ {
		if back, _ := authorize(t, hs.URL, good()); back.Get("code") == "" {
			t.Fatalf("authorization %d within the bound: %v", i, back)
		}
	}
	if back, _ := authorize(t, hs.URL, good()); back.Get("error") != "temporarily_unavailable" {
		t.Fatalf("past MaxPendingFlows: %v", back)
	}
	resp, err = http.PostForm(hs.URL+"/oauth/device_authorization", url.Values{"client_id": {"cli"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a device authorization past MaxPendingFlows: %d", resp.StatusCode)
	}
	clock.Advance(2 * codeTTL) // every code expired, none used
	if back, _ := authorize(t, hs.URL, good()); back.Get("code") == "" || s.PendingFlows() != 1 {
		t.Fatalf("after the codes expired: %v, %d pending (want the expired ones dropped)", back, s.PendingFlows())
	}
	clock.Advance(2 * codeTTL)
	s.timedSweep() // what the timer runs when no request comes
	if s.PendingFlows() != 0 {
		t.Fatalf("%d flows pending after they expired with no traffic", s.PendingFlows())
	}
}
