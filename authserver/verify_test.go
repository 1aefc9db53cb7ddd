package authserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

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

func FuzzBearerHeader(f *testing.F) {
	s := fuzzServer(f)
	f.Add("Bearer a.b.c")
	f.Add("bearer eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, header string) {
		rec := serve(s, "GET", "/api/v1/me", "", "", header)
		if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusOK {
			t.Fatalf("%q: %d", header, rec.Code)
		}
	})
}
