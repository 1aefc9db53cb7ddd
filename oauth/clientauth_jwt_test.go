package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Every algorithm's assertion verifies with golang-jwt against the public
// key, with the claims RFC 7523 asks for; two assertions never share a jti.
func TestClientKeyAssertions(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	for _, c := range []struct {
		signer crypto.Signer
		alg    string // "" = chosen from the key
		want   string
	}{
		{p256, "", "ES256"}, {p384, "", "ES384"}, {rsaKey, "", "RS256"}, {rsaKey, "PS256", "PS256"}, {edKey, "", "EdDSA"},
	} {
		k := &ClientKey{Signer: c.signer, Algorithm: c.alg, KeyID: "k1"}
		a, err := k.assertion("client-1", "https://as.example/token", now)
		if err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		b, _ := k.assertion("client-1", "https://as.example/token", now)
		claims := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(a, claims, func(tok *jwt.Token) (any, error) { return c.signer.Public(), nil },
			jwt.WithValidMethods([]string{c.want}), jwt.WithAudience("https://as.example/token"), jwt.WithIssuer("client-1"), jwt.WithSubject("client-1"), jwt.WithExpirationRequired())
		if err != nil || !tok.Valid || tok.Header["kid"] != "k1" {
			t.Fatalf("%s: does not verify: %v", c.want, err)
		}
		other := jwt.MapClaims{}
		_, _ = jwt.ParseWithClaims(b, other, func(*jwt.Token) (any, error) { return c.signer.Public(), nil })
		if claims["jti"] == "" || claims["jti"] == other["jti"] {
			t.Fatalf("%s: jti %v and %v", c.want, claims["jti"], other["jti"])
		}
		if exp, _ := claims.GetExpirationTime(); exp.Sub(now) > 61*time.Second {
			t.Fatalf("%s: exp %v is not short", c.want, exp)
		}
	}
	for _, bad := range []*ClientKey{{Signer: p256, Algorithm: "RS256"}, {Signer: rsaKey, Algorithm: "ES256"}, {Signer: p256, Algorithm: "HS256"}, {}} {
		if _, err := bad.assertion("c", "https://as.example/token", now); err == nil {
			t.Fatalf("%+v: signed", bad)
		}
	}
}

func TestParseClientKeyPEM(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	signer, err := ParseClientKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || !signer.Public().(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatalf("%v", err)
	}
	for _, bad := range []string{"", "not pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret-bytes")})), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))} {
		if _, err := ParseClientKeyPEM([]byte(bad)); err == nil || strings.Contains(err.Error(), "secret-bytes") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// FuzzParseClientKeyPEM: any input is a key or an error.
func FuzzParseClientKeyPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = ParseClientKeyPEM(data) })
}
