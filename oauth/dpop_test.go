package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/golang-jwt/jwt/v5"
)

func dpopKeys(t testing.TB) map[string]*DPoPKey {
	t.Helper()
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]*DPoPKey{
		"ES256": {Signer: ec256}, "ES384": {Signer: ec384},
		"RS256": {Signer: rk}, "PS256": {Signer: rk, Algorithm: "PS256"}, "EdDSA": {Signer: ed},
	}
}

// A proof is a JWT of type dpop+jwt, signed by the key whose public JWK it
// carries, with the claims RFC 9449 §4.2 names: a unique jti, htm, htu
// without query and fragment, iat, ath for an access token, the nonce.
func TestDPoPProof(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for alg, k := range dpopKeys(t) {
		var jtis []string
		for range 2 {
			proof, err := k.Proof("POST", "HTTPS://API.Example.com/v1/orders?page=2#top", "access-token-1", "nonce-1", now)
			if err != nil {
				t.Fatalf("%s: %v", alg, err)
			}
			var claims struct {
				JTI, HTM, HTU, ATH, Nonce string
				IAT                       int64
			}
			tok, err := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation()).
				Parse(proof, func(*jwt.Token) (any, error) { return k.Signer.Public(), nil })
			if err != nil || !tok.Valid {
				t.Fatalf("%s: the proof does not verify with its key: %v", alg, err)
			}
			parts := strings.Split(proof, ".")
			body, _ := base64.RawURLEncoding.DecodeString(parts[1])
			if err := json.Unmarshal(body, &claims); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte("access-token-1"))
			if claims.HTM != "POST" || claims.HTU != "https://api.example.com/v1/orders" || claims.IAT != now.Unix() ||
				claims.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) || claims.Nonce != "nonce-1" || len(claims.JTI) < 16 {
				t.Fatalf("%s: claims %+v", alg, claims)
			}
			if tok.Header["typ"] != "dpop+jwt" || tok.Header["alg"] != alg {
				t.Fatalf("%s: header %v", alg, tok.Header)
			}
			jwk, _ := json.Marshal(tok.Header["jwk"])
			if want, _ := publicJWK(k.Signer.Public()); !jsonEqual(jwk, want) {
				t.Fatalf("%s: jwk %s, want %s", alg, jwk, want)
			}
			jtis = append(jtis, claims.JTI)
		}
		if jtis[0] == jtis[1] {
			t.Fatalf("%s: two proofs share a jti", alg)
		}
	}
}

// The thumbprint is RFC 7638's: SHA-256 of the required members in
// lexicographic order, as encoding/json orders a map's keys.
func TestDPoPThumbprint(t *testing.T) {
	for alg, k := range dpopKeys(t) {
		got, err := k.Thumbprint()
		if err != nil {
			t.Fatal(err)
		}
		var members map[string]string
		jwk, _ := publicJWK(k.Signer.Public())
		_ = json.Unmarshal(jwk, &members)
		canonical, _ := json.Marshal(members)
		sum := sha256.Sum256(canonical)
		if want := base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
			t.Fatalf("%s: thumbprint %s, want %s", alg, got, want)
		}
	}
}

// A key that cannot make a proof, or a target that is no URL, is an error
// naming the setting.
func TestDPoPProofErrors(t *testing.T) {
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, c := range map[string]struct {
		k      *DPoPKey
		target string
		says   string
	}{
		"no signer":       {&DPoPKey{}, "https://a.example/", "DPoPKey.Signer"},
		"P-521":           {&DPoPKey{Signer: p521}, "https://a.example/", "DPoPKey.Algorithm"},
		"alg of another":  {&DPoPKey{Signer: ec, Algorithm: "RS256"}, "https://a.example/", "cannot sign"},
		"relative target": {&DPoPKey{Signer: ec}, "/v1/orders", "absolute http(s) URL"},
	} {
		if _, err := c.k.Proof("GET", c.target, "", "", time.Now()); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.says)
		}
	}
}

// htu never carries a query or a fragment, and keeps the target's host
// and path.
func FuzzProofTarget(f *testing.F) {
	for _, s := range []string{"https://a.example/x?q=1#f", "HTTP://A.EXAMPLE:8080/%2F?x", "https://a.example", "https://[::1]:443/p;q", "ftp://x/", "https://a.example/é?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		htu, err := proofTarget(target)
		if err != nil {
			return
		}
		u, err := url.Parse(htu)
		if err != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(htu, "?#") {
			t.Fatalf("%q: htu %q", target, htu)
		}
		in, _ := url.Parse(target)
		if !strings.EqualFold(u.Host, in.Host) || u.EscapedPath() != in.EscapedPath() {
			t.Fatalf("%q: htu %q changed the host or path", target, htu)
		}
	})
}

// BenchmarkDPoPProof: what a proof costs beside the one signature it
// needs (a bare ECDSA P-256 sign of a digest, in the same run).
func BenchmarkDPoPProof(b *testing.B) {
	k, _ := NewDPoPKey()
	b.Run("ecdsa-sign-p256", func(b *testing.B) { benchSign(b, k) })
	b.Run("proof-es256", func(b *testing.B) {
		now := time.Now()
		b.ReportAllocs()
		for range b.N {
			if _, err := k.Proof("GET", "https://api.example.com/v1/me", "access-token-1", "nonce-1", now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDPoPRoundTrip: a Transport request with a DPoP-bound token
// (a proof signed per request, by the key the token carries) beside the
// same request with a bearer token and a bare P-256 signature, in front of
// a base that answers at once. The target: DPoP ≤ 1.2 × (bearer + sign).
func BenchmarkDPoPRoundTrip(b *testing.B) {
	k, _ := NewDPoPKey()
	resp := &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}
	base := roundTripper(func(*http.Request) (*http.Response, error) { return resp, nil })
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/api/v1/data", nil)
	req.Header.Set("Accept", "application/json")
	run := func(b *testing.B, tok *authrefresh.Token, refresher authrefresh.Refresher) {
		s := authrefresh.NewSession(nil, refresher, authrefresh.Options{})
		if err := s.Login(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
		rt := &authrefresh.Transport{Session: s, Base: base}
		b.ReportAllocs()
		for range b.N {
			if _, err := rt.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	}
	access := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
	b.Run("ecdsa-sign-p256", func(b *testing.B) { benchSign(b, k) })
	b.Run("bearer", func(b *testing.B) {
		run(b, &authrefresh.Token{AccessToken: access, ExpiresIn: time.Hour}, &Config{})
	})
	b.Run("dpop", func(b *testing.B) {
		run(b, &authrefresh.Token{AccessToken: access, TokenType: "DPoP", DPoPKey: k.privateJWK(), ExpiresIn: time.Hour}, &Config{})
	})
}

// benchSign is the bare signature a proof needs: ECDSA P-256 of a digest.
func benchSign(b *testing.B, k *DPoPKey) {
	digest := sha256.Sum256([]byte("a proof's signing input"))
	b.ReportAllocs()
	for range b.N {
		if _, err := k.Signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// A server's list of DPoP algorithms refuses a key it does not take, by
// name; a server that lists none refuses nothing.
func TestCheckDPoPKey(t *testing.T) {
	k, _ := NewDPoPKey()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	m := &ProviderMetadata{Issuer: "https://as.example", DPoPSigningAlgValuesSupported: []string{"ES256", "PS256"}}
	if err := m.CheckDPoPKey(k); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckDPoPKey(&DPoPKey{Signer: ed}); err == nil || !strings.Contains(err.Error(), "ES256, PS256, not EdDSA") {
		t.Fatalf("EdDSA against ES256, PS256: %v", err)
	}
	if err := (&ProviderMetadata{}).CheckDPoPKey(&DPoPKey{Signer: ed}); err != nil {
		t.Fatalf("a server that lists none: %v", err)
	}
	if err := m.CheckDPoPKey(nil); err == nil {
		t.Fatal("a nil key accepted")
	}
}
