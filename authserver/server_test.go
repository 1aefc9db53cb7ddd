package authserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server, *fakeclock.Clock) {
	t.Helper()
	c := fakeclock.New()
	if cfg.Clock == nil {
		cfg.Clock = c.Now
	}
	cfg.PasswordCost = bcrypt.MinCost
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 2 * time.Second
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs, c
}

func postJSON(t testing.TB, url, body string) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func login(t testing.TB, base string) (access, refresh string) {
	t.Helper()
	status, out, _ := postJSON(t, base+"/auth/login", `{"username":"demo","password":"demo-password"}`)
	if status != 200 {
		t.Fatalf("login: %d %v", status, out)
	}
	return out["access_token"].(string), out["refresh_token"].(string)
}

func refresh(t testing.TB, base, rt string) (int, map[string]any) {
	t.Helper()
	status, out, _ := postJSON(t, base+"/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, rt))
	return status, out
}

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

// Reuse of a used refresh token revokes the whole family, the live successor included.
func TestReuseDetectionRevokesFamily(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	access, r1 := login(t, hs.URL)
	_, out := refresh(t, hs.URL, r1)
	r2 := out["refresh_token"].(string)
	status, out := refresh(t, hs.URL, r1)
	if status != 401 || out["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", status, out)
	}
	if status, _ := refresh(t, hs.URL, r2); status != 401 {
		t.Fatalf("R2 still works after reuse of R1: %d", status)
	}
	if s.Counters().ReuseDetections != 1 {
		t.Fatalf("reuse detections %d", s.Counters().ReuseDetections)
	}
	// The family's access tokens die with it.
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("access token of a revoked family: %d", resp.StatusCode)
	}
}

func TestGracePeriodReplaysSameSuccessor(t *testing.T) {
	_, hs, c := newTestServer(t, Config{GracePeriod: 5 * time.Second})
	_, r1 := login(t, hs.URL)
	_, first := refresh(t, hs.URL, r1)
	c.Advance(2 * time.Second)
	status, again := refresh(t, hs.URL, r1)
	if status != 200 || again["refresh_token"] != first["refresh_token"] || again["access_token"] != first["access_token"] {
		t.Fatalf("grace replay: %d, same successor: %v", status, again["refresh_token"] == first["refresh_token"])
	}
	c.Advance(4 * time.Second) // outside the window
	if status, _ := refresh(t, hs.URL, r1); status != 401 {
		t.Fatalf("replay after the grace period: %d", status)
	}
	if status, _ := refresh(t, hs.URL, first["refresh_token"].(string)); status != 401 {
		t.Fatal("family not revoked after a late replay")
	}
}

// 100 concurrent uses of one refresh token: exactly one success.
func TestRotationIsAtomic(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	_, r1 := login(t, hs.URL)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var successors []string
	start := make(chan struct{})
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, out := refresh(t, hs.URL, r1)
			mu.Lock()
			defer mu.Unlock()
			statuses[status]++
			if status == 200 {
				successors = append(successors, out["refresh_token"].(string))
			} else if out["error"] != "invalid_grant" {
				t.Errorf("loser got %v", out)
			}
		}()
	}
	close(start)
	wg.Wait()
	if statuses[200] != 1 || statuses[401] != 99 {
		t.Fatalf("statuses %v, want one 200 and 99 401", statuses)
	}
	if s.Counters().Refreshes != 1 {
		t.Fatalf("%d rotations", s.Counters().Refreshes)
	}
}

func TestRotationOffKeepsRefreshToken(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{DisableRotation: true})
	_, r1 := login(t, hs.URL)
	for i := 0; i < 3; i++ {
		status, out := refresh(t, hs.URL, r1)
		if status != 200 || out["refresh_token"] != r1 {
			t.Fatalf("refresh %d: %d", i, status)
		}
	}
}

func TestAbsoluteRefreshLifetime(t *testing.T) {
	_, hs, c := newTestServer(t, Config{RefreshTTL: time.Minute})
	_, rt := login(t, hs.URL)
	for i := 0; i < 5; i++ { // using it does not extend it
		c.Advance(10 * time.Second)
		_, out := refresh(t, hs.URL, rt)
		rt = out["refresh_token"].(string)
	}
	c.Advance(11 * time.Second)
	if status, out := refresh(t, hs.URL, rt); status != 401 || !strings.Contains(out["error_description"].(string), "expired") {
		t.Fatalf("after the absolute lifetime: %d %v", status, out)
	}
}

// Every bad token kind: status, challenge and JSON shape.
func TestBadTokens(t *testing.T) {
	s, hs, c := newTestServer(t, Config{})
	now := c.Now()
	claims := func(mod func(*Claims)) *Claims {
		cl := &Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "authrefresh", Audience: jwt.ClaimStrings{"authrefresh-api"}, Subject: "demo",
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: "0.x"}}
		if mod != nil {
			mod(cl)
		}
		return cl
	}
	sign := func(method jwt.SigningMethod, key any, cl *Claims, kid string) string {
		tok := jwt.NewWithClaims(method, cl)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		str, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return str
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub := s.key.priv.Public().(ed25519.PublicKey)
	kid := s.key.kid
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	good := sign(jwt.SigningMethodEdDSA, s.key.priv, claims(nil), kid)
	cases := []struct {
		name, header, cause string
		status              int
	}{
		{"valid", "Bearer " + good, "", 200},
		{"no token", "", "missing", 401},
		{"garbage", "Bearer not.a.jwt", "malformed", 401},
		{"basic scheme", "Basic dXNlcjpwYXNz", "malformed", 401},
		{"alg none", "Bearer " + none, "algorithm", 401},
		{"another key", "Bearer " + sign(jwt.SigningMethodEdDSA, otherKey, claims(nil), kid), "signature", 401},
		{"unknown kid", "Bearer " + sign(jwt.SigningMethodEdDSA, s.key.priv, claims(nil), "nope"), "signature", 401},
		{"HS256 with the public key", "Bearer " + sign(jwt.SigningMethodHS256, []byte(pub), claims(nil), kid), "algorithm", 401},
		{"RS256", "Bearer " + sign(jwt.SigningMethodRS256, rsaKey, claims(nil), kid), "algorithm", 401},
		{"wrong audience", "Bearer " + sign(jwt.SigningMethodEdDSA, s.key.priv, claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }), kid), "audience", 401},
		{"foreign issuer", "Bearer " + sign(jwt.SigningMethodEdDSA, s.key.priv, claims(func(c *Claims) { c.Issuer = "evil" }), kid), "issuer", 401},
		{"expired", "Bearer " + sign(jwt.SigningMethodEdDSA, s.key.priv, claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) }), kid), "expired", 401},
		{"not yet valid", "Bearer " + sign(jwt.SigningMethodEdDSA, s.key.priv, claims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), kid), "not_yet_valid", 401},
		{"no exp", "Bearer " + sign(jwt.SigningMethodEdDSA, s.key.priv, claims(func(c *Claims) { c.ExpiresAt = nil }), kid), "missing_claim", 401},
		{"revoked", "Bearer " + sign(jwt.SigningMethodEdDSA, s.key.priv, claims(func(c *Claims) { c.ID = "99.x" }), kid), "revoked", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			before := s.Counters().Unauthorized[tc.cause]
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				return
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			switch {
			case tc.cause == "missing" && challenge != `Bearer realm="authrefresh"`:
				t.Fatalf("challenge %q", challenge)
			case tc.cause != "missing" && !strings.Contains(challenge, `error="invalid_token"`):
				t.Fatalf("challenge %q", challenge)
			case tc.cause != "missing" && body["error"] != "invalid_token":
				t.Fatalf("body %v", body)
			}
			if s.Counters().Unauthorized[tc.cause] != before+1 {
				t.Fatalf("cause counter %q not incremented: %v", tc.cause, s.Counters().Unauthorized)
			}
		})
	}
	s.SetExpiredStatus(403)
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+none)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("expired status 403 not applied: %d", resp.StatusCode)
	}
}

// Malformed input is a 4xx with a JSON error, never a 500.
func TestMalformedInput(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{MaxBodyBytes: 1 << 10})
	access, _ := login(t, hs.URL)
	huge := strings.Repeat("a", 2<<10)
	cases := []struct {
		method, path, ctype, body string
		status                    int
		errCode                   string
	}{
		{"POST", "/auth/login", "application/json", `{"username":`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `[]`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `{"username":1}`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `{}`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `{"username":"demo","password":"` + huge + `"}`, 413, "request_too_large"},
		{"POST", "/auth/refresh", "application/json", `{"refresh_token":"nope"}`, 401, "invalid_grant"},
		{"POST", "/auth/refresh", "application/json", `nope`, 400, "invalid_request"},
		{"POST", "/auth/refresh", "application/json", `{}`, 400, "invalid_request"},
		{"GET", "/auth/refresh", "", ``, 405, "method_not_allowed"},
		{"POST", "/oauth/token", "application/json", `{"grant_type":"password"}`, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=magic`, 400, "unsupported_grant_type"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", ``, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=refresh_token&refresh_token=x`, 400, "invalid_grant"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=password&username=a&username=b`, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=%zz`, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=client_credentials&client_id=demo-client&client_secret=bad`, 401, "invalid_client"},
		{"POST", "/oauth/revoke", "application/x-www-form-urlencoded", `token=unknown`, 200, ""},
		{"POST", "/oauth/revoke", "application/x-www-form-urlencoded", ``, 400, "invalid_request"},
		{"GET", "/nope", "", ``, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path+tc.body[:min(len(tc.body), 30)], func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			if tc.errCode != "" {
				var body map[string]any
				if err := json.Unmarshal(data, &body); err != nil || body["error"] != tc.errCode {
					t.Fatalf("body %s, want error %q", data, tc.errCode)
				}
			}
		})
	}
	// The protected API with a valid token and bad products.
	for body, field := range map[string]string{`{"name":"","price":1}`: "name", `{"name":"x","price":0}`: "price", `{"name":"x","price":"12"}`: "price", `{"name":"x"}`: "price"} {
		req, _ := http.NewRequest("POST", hs.URL+"/api/v1/data", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+access)
		resp, _ := http.DefaultClient.Do(req)
		var out struct {
			Error   string            `json:"error"`
			Details map[string]string `json:"details"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 400 || out.Error == "" || out.Details[field] == "" {
			t.Fatalf("%s: %d %+v", body, resp.StatusCode, out)
		}
	}
	if s.Counters().Panics != 0 {
		t.Fatal("a handler panicked")
	}
}

// 200 simultaneous guesses for one user are limited like sequential ones:
// the attempt is reserved before the password is hashed, so at most the
// allowance (5 failures; a success gives its attempt back) is checked and
// the rest are 429.
func TestLoginThrottleIsAtomic(t *testing.T) {
	s, err := New(Config{PasswordCost: 6}) // a realistic hash: a race window of milliseconds
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	statuses := make(chan int, 200)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := `{"username":"demo","password":"wrong"}`
			if i == 199 {
				body = `{"username":"demo","password":"demo-password"}`
			}
			status, _, _ := postJSON(t, hs.URL+"/auth/login", body)
			statuses <- status
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	checked := count[401] + count[200]
	if count[401] > 5 || count[429] < 194 {
		t.Fatalf("statuses %v: %d wrong passwords checked, want at most the allowance of 5", count, count[401])
	}
	if got := s.Counters().LoginFailures + s.Counters().Logins; got != uint64(checked) {
		t.Fatalf("server counted %d checked logins, answers say %d", got, checked)
	}
}

func TestLoginRateLimited(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	for i := 0; i < 5; i++ {
		if status, _, _ := postJSON(t, hs.URL+"/auth/login", `{"username":"demo","password":"wrong"}`); status != 401 {
			t.Fatalf("attempt %d: %d", i, status)
		}
	}
	status, out, h := postJSON(t, hs.URL+"/auth/login", `{"username":"demo","password":"demo-password"}`)
	if status != 429 || h.Get("Retry-After") == "" || out["error"] == nil {
		t.Fatalf("after 5 failures: %d %v retry-after=%q", status, out, h.Get("Retry-After"))
	}
	if s.Counters().LoginsThrottled != 1 {
		t.Fatal("throttle not counted")
	}
}

func TestCORSPreflight(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{AllowedOrigins: []string{"http://localhost:3000"}})
	for origin, want := range map[string]int{"http://localhost:3000": 204, "http://evil.example": 403} {
		req, _ := http.NewRequest("OPTIONS", hs.URL+"/api/v1/data", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d", origin, resp.StatusCode)
		}
		if want == 204 && (resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")) {
			t.Fatalf("headers %v", resp.Header)
		}
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

func TestInjectedRefreshFailuresAndControlAPI(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{EnableControlAPI: true})
	_, rt := login(t, hs.URL)
	resp, err := http.Post(hs.URL+"/_control/faults", "application/json", strings.NewReader(`{"fail_refreshes":2}`))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("faults: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	for i := 0; i < 2; i++ {
		if status, out := refresh(t, hs.URL, rt); status != 503 || out["error"] != "temporarily_unavailable" {
			t.Fatalf("injected failure %d: %d", i, status)
		}
	}
	if status, _ := refresh(t, hs.URL, rt); status != 200 {
		t.Fatalf("after the injected failures: %d", status)
	}
	resp, _ = http.Get(hs.URL + "/_control/counters")
	var counters Counters
	_ = json.NewDecoder(resp.Body).Decode(&counters)
	resp.Body.Close()
	if counters.InjectedFailures != 2 || counters.Refreshes != 1 {
		t.Fatalf("counters over HTTP: %+v", counters)
	}
}

func TestAlgorithmsSignAndVerify(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		_, hs, _ := newTestServer(t, Config{Algorithm: alg})
		access, _ := login(t, hs.URL)
		req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", alg, resp.StatusCode)
		}
	}
	if _, err := New(Config{Algorithm: "HS256"}); err == nil {
		t.Fatal("HS256 accepted")
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

// The seeds' shapes work unchanged: seed 002 posts {"token"} to
// /auth/refresh-token, seed 001 reads accessToken and sends the bare token.
func TestSeedShapes(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{})
	_, rt := login(t, hs.URL)
	status, out, _ := postJSON(t, hs.URL+"/auth/refresh-token", fmt.Sprintf(`{"token":%q}`, rt))
	if status != 200 || out["accessToken"] == nil || out["accessToken"] != out["access_token"] {
		t.Fatalf("seed 002 refresh: %d %v", status, out)
	}
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
	req.Header.Set("authorization", out["accessToken"].(string)) // seed 001: no "Bearer "
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bare token: %d", resp.StatusCode)
	}
}

// Each chaos fault, forced with rate 1, does exactly what its documentation
// says, as a plain HTTP client sees it and as the counters record it.
func TestChaosFaults(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{EnableControlAPI: true})
	access, rt := login(t, hs.URL)
	post := func(path, auth, body string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", hs.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		return http.DefaultClient.Do(req)
	}

	s.SetChaos(Chaos{Seed: 1, RefreshFailRate: 1})
	if status, out := refresh(t, hs.URL, rt); status != 503 || out["error"] != "temporarily_unavailable" {
		t.Fatalf("fail: %d %v", status, out)
	}
	s.SetChaos(Chaos{Seed: 1, RefreshDropRate: 1})
	if resp, err := post("/auth/refresh", "", `{"refresh_token":"`+rt+`"}`); err == nil {
		resp.Body.Close()
		t.Fatalf("drop: got %s, want a closed connection", resp.Status)
	}
	if c := s.Counters(); c.Refreshes != 0 {
		t.Fatalf("a dropped refresh was processed: %+v", c)
	}
	s.SetChaos(Chaos{Seed: 1, RefreshLostRate: 1})
	if resp, err := post("/auth/refresh", "", `{"refresh_token":"`+rt+`"}`); err == nil {
		resp.Body.Close()
		t.Fatalf("lost: got %s, want a closed connection", resp.Status)
	}
	if c := s.Counters(); c.Refreshes != 1 {
		t.Fatalf("a lost refresh was not processed: %+v", c)
	}
	s.SetChaos(Chaos{Seed: 1, APICutRate: 1})
	resp, err := post("/api/v1/data", access, `{"name":"cut","price":3}`)
	if err != nil {
		t.Fatal(err) // the headers arrive whole
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut: read %v, want unexpected EOF", err)
	}
	if p := s.TakeProducts(); len(p) != 1 || p[0].Name != "cut" || p[0].ID != 1 {
		t.Fatalf("cut POST did not create its product: %+v", p)
	}
	if p := s.Products(); len(p) != 0 {
		t.Fatalf("TakeProducts left %+v", p)
	}
	s.SetChaos(Chaos{Seed: 1, RevokeRate: 1})
	resp, err = post("/api/v1/data", access, `{"name":"revoked","price":3}`)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("revoke: %v %v", err, resp.Status)
	}
	resp.Body.Close()

	// Off again, and the settings and counts are reachable over HTTP.
	resp, err = http.Post(hs.URL+"/_control/faults", "application/json", strings.NewReader(`{"chaos":{}}`))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("control: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	resp, _ = http.Get(hs.URL + "/_control/counters")
	var counters Counters
	_ = json.NewDecoder(resp.Body).Decode(&counters)
	resp.Body.Close()
	want := FaultCounts{Refresh503: 1, RefreshDropped: 1, RefreshLost: 1, APICut: 1, AccessRevoked: 1}
	if counters.Faults != want || counters.Panics != 0 {
		t.Fatalf("faults %+v, want %+v (panics %d)", counters.Faults, want, counters.Panics)
	}
	_, fresh := login(t, hs.URL)
	if status, _ := refresh(t, hs.URL, fresh); status != 200 {
		t.Fatalf("chaos off: refresh %d", status)
	}
	access2, _ := login(t, hs.URL)
	resp, err = post("/api/v1/data", access2, `{"name":"after-take","price":1}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p := s.Products(); len(p) != 1 || p[0].ID != 2 {
		t.Fatalf("IDs must keep counting after TakeProducts: %+v", p)
	}
}

// A family remembers its last familyHistory refresh tokens: the server's
// memory does not grow with every rotation, a recent used token still trips
// reuse detection, and a forgotten one is refused as unknown.
func TestFamilyHistoryIsBounded(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	_, first := login(t, hs.URL)
	rt := first
	var recent string
	for i := 0; i < familyHistory+10; i++ {
		answer, gerr := s.refreshGrant(context.Background(), rt, "", "", false)
		if gerr != nil {
			t.Fatalf("rotation %d: %v", i, gerr.description)
		}
		if i == familyHistory {
			recent = rt
		}
		rt = answer.RefreshToken
	}
	s.refresh.mu.Lock()
	remembered := len(s.refresh.byHash)
	s.refresh.mu.Unlock()
	if remembered != familyHistory {
		t.Fatalf("%d refresh tokens remembered, want %d", remembered, familyHistory)
	}
	if status, out := refresh(t, hs.URL, first); status != 401 || out["error_description"] != "unknown refresh token" || s.Counters().ReuseDetections != 0 {
		t.Fatalf("a forgotten token: %d %v, reuse %d", status, out, s.Counters().ReuseDetections)
	}
	if status, _ := refresh(t, hs.URL, recent); status != 401 || s.Counters().ReuseDetections != 1 {
		t.Fatalf("a recent used token: %d, reuse %d", status, s.Counters().ReuseDetections)
	}
}
