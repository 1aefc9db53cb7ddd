package authserver

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// private_key_jwt: an assertion signed by the client's registered key gets
// a token once; a replayed jti, another audience or another key do not.
func TestPrivateKeyJWTClients(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, hs, clock := newTestServer(t, Config{ClientKeys: map[string]crypto.PublicKey{"keyed": pub}})
	assertion := func(key ed25519.PrivateKey, aud, jti string) string {
		now := clock.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Issuer: "keyed", Subject: "keyed", Audience: jwt.ClaimStrings{aud},
			ID: jti, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))})
		s, _ := tok.SignedString(key)
		return s
	}
	grant := func(a string) (int, map[string]any) {
		return tokenForm(t, hs.URL, url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {jwtBearer}, "client_assertion": {a}})
	}
	first := assertion(priv, hs.URL+"/oauth/token", "j1")
	if status, out := grant(first); status != 200 || out["access_token"] == nil {
		t.Fatalf("a good assertion: %d %v", status, out)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for name, a := range map[string]string{
		"replayed":       first,
		"other audience": assertion(priv, "https://elsewhere/token", "j2"),
		"other key":      assertion(other, hs.URL+"/oauth/token", "j3"),
	} {
		if status, out := grant(a); status != 401 || out["error"] != "invalid_client" {
			t.Fatalf("%s: %d %v", name, status, out)
		}
	}
	if status, out := tokenForm(t, hs.URL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"keyed"}, "client_secret": {""}}); status != 401 {
		t.Fatalf("a keyed client without its assertion: %d %v", status, out)
	}
}
