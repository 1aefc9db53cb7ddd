package oauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad(n *big.Int, size int) []byte { return n.FillBytes(make([]byte, size)) }

// Private JWKs of each type parse into a ClientKey that signs assertions,
// keeping kid and alg; public keys, mismatched halves and key sets of
// several keys are refused without quoting the key.
func TestParseClientKeyJWK(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, ed, _ := ed25519.GenerateKey(rand.Reader)
	good := map[string]map[string]string{
		"ES384": {"kty": "EC", "crv": "P-384", "kid": "k-ec", "d": b64(pad(ec.D, 48)), "x": b64(pad(ec.X, 48)), "y": b64(pad(ec.Y, 48))},
		"PS256": {"kty": "RSA", "kid": "k-rsa", "alg": "PS256", "n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes()), "d": b64(rk.D.Bytes()), "p": b64(rk.Primes[0].Bytes()), "q": b64(rk.Primes[1].Bytes())},
		"EdDSA": {"kty": "OKP", "crv": "Ed25519", "kid": "k-ed", "d": b64(ed.Seed()), "x": b64(pub)},
	}
	for alg, jwk := range good {
		data, _ := json.Marshal(jwk)
		key, err := ParseClientKeyJWK(data)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		got, _, _ := key.algorithm()
		if got != alg || key.KeyID != jwk["kid"] {
			t.Fatalf("%s: alg %s kid %s", alg, got, key.KeyID)
		}
		if _, err := key.assertion("client", "https://op/token", time.Now()); err != nil {
			t.Fatalf("%s: signing: %v", alg, err)
		}
		set, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
		if _, err := ParseClientKeyJWK(set); err != nil {
			t.Fatalf("%s in a set: %v", alg, err)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	mismatched := map[string]string{"kty": "EC", "crv": "P-384", "d": b64(pad(ec.D, 48)), "x": b64(pad(other.X, 48)), "y": b64(pad(other.Y, 48))}
	public := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(pub)}
	two, _ := json.Marshal(map[string]any{"keys": []any{good["EdDSA"], good["ES384"]}})
	for name, bad := range map[string]any{"mismatched": mismatched, "public": public, "two keys": json.RawMessage(two), "not json": json.RawMessage(`"x"`)} {
		data, _ := json.Marshal(bad)
		_, err := ParseClientKeyJWK(data)
		if err == nil || strings.Contains(err.Error(), good["EdDSA"]["d"]) || strings.Contains(err.Error(), mismatched["d"]) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// FuzzParseClientKeyJWK: any input is a key that signs, or an error.
func FuzzParseClientKeyJWK(f *testing.F) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	seed, _ := json.Marshal(map[string]string{"kty": "OKP", "crv": "Ed25519", "d": b64(ed.Seed()), "x": b64(ed.Public().(ed25519.PublicKey))})
	f.Add(seed)
	f.Add([]byte(`{"kty":"EC","crv":"P-256","d":"AA","x":"AA","y":"AA"}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQ","p":"Aw","q":"BQ"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseClientKeyJWK(data)
		if err != nil {
			return
		}
		if _, err := key.assertion("c", "https://op/token", time.Now()); err != nil {
			t.Fatalf("a parsed key does not sign: %v", err)
		}
	})
}
