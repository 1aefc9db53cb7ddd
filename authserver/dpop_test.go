package authserver

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/oauth"
)

// dpopRequest is a request to target with proof in its DPoP header.
func dpopRequest(method, target, proof string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if proof != "" {
		r.Header.Set("DPoP", proof)
	}
	return r
}

// Every check of a proof, each refusing what it must and naming why.
func TestDPoPVerifierChecks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key, _ := oauth.NewDPoPKey()
	thumb, _ := key.Thumbprint()
	target := "http://api.example/v1/me"
	proof := func(method, url, access, nonce string, at time.Time) string {
		p, err := key.Proof(method, url, access, nonce, at)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	v := &DPoPVerifier{Clock: func() time.Time { return now }}
	good := proof("GET", target+"?q=1", "tok", "", now)
	if jkt, err := v.Check(dpopRequest("GET", target+"?q=2", good), "tok"); err != nil || jkt != thumb {
		t.Fatalf("a good proof: %v (jkt %q, want %q)", err, jkt, thumb)
	}
	if _, err := v.Check(dpopRequest("GET", target, good), "tok"); err == nil || !strings.Contains(err.Error(), "already used") || v.Replays() != 1 {
		t.Fatalf("a replayed proof: %v", err)
	}
	// A proof whose header is changed no longer verifies.
	parts := strings.SplitN(proof("GET", target, "tok", "", now), ".", 3)
	head, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	json.Unmarshal(head, &h)
	typed := func(mod func(map[string]any)) string {
		c := map[string]any{}
		for k, v := range h {
			c[k] = v
		}
		mod(c)
		b, _ := json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString(b) + "." + parts[1] + "." + parts[2]
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey := &oauth.DPoPKey{Signer: other}
	otherProof, _ := otherKey.Proof("GET", target, "tok", "", now)
	otherHead, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(otherProof, ".", 2)[0])
	var oh map[string]any
	json.Unmarshal(otherHead, &oh)
	for name, c := range map[string]struct {
		r      *http.Request
		access string
		want   string
	}{
		"no header":           {dpopRequest("GET", target, ""), "tok", "exactly one"},
		"not a JWS":           {dpopRequest("GET", target, "garbage"), "tok", "not a JWS"},
		"typ":                 {dpopRequest("GET", target, typed(func(m map[string]any) { m["typ"] = "JWT" })), "tok", "typ"},
		"alg none":            {dpopRequest("GET", target, typed(func(m map[string]any) { m["alg"] = "none" })), "tok", "alg"},
		"HS256":               {dpopRequest("GET", target, typed(func(m map[string]any) { m["alg"] = "HS256" })), "tok", "alg"},
		"private jwk":         {dpopRequest("GET", target, typed(func(m map[string]any) { m["jwk"].(map[string]any)["d"] = "AAAA" })), "tok", "private"},
		"another key's jwk":   {dpopRequest("GET", target, typed(func(m map[string]any) { m["jwk"] = oh["jwk"] })), "tok", "signature"},
		"htm":                 {dpopRequest("POST", target, proof("GET", target, "tok", "", now)), "tok", "htm"},
		"htu":                 {dpopRequest("GET", "http://api.example/v1/other", proof("GET", target, "tok", "", now)), "tok", "htu"},
		"htu host":            {dpopRequest("GET", "http://evil.example/v1/me", proof("GET", target, "tok", "", now)), "tok", "htu"},
		"old iat":             {dpopRequest("GET", target, proof("GET", target, "tok", "", now.Add(-2*time.Minute))), "tok", "iat"},
		"future iat":          {dpopRequest("GET", target, proof("GET", target, "tok", "", now.Add(2*time.Minute))), "tok", "iat"},
		"ath of another":      {dpopRequest("GET", target, proof("GET", target, "other", "", now)), "tok", "ath"},
		"no ath":              {dpopRequest("GET", target, proof("GET", target, "", "", now)), "tok", "ath"},
		"ath at the endpoint": {dpopRequest("GET", target, proof("GET", target, "tok", "", now)), "", "ath"},
	} {
		_, err := v.Check(c.r, c.access)
		var pe *ProofError
		if !errors.As(err, &pe) || pe.Code != "invalid_dpop_proof" || !strings.Contains(pe.Reason, c.want) {
			t.Errorf("%s: %v; want invalid_dpop_proof about %q", name, err, c.want)
		}
	}
	r := dpopRequest("GET", target, good)
	r.Header.Add("DPoP", good)
	if _, err := v.Check(r, "tok"); err == nil {
		t.Error("two DPoP headers accepted")
	}
	// Nonces: none or an old one is answered use_dpop_nonce.
	n := &DPoPVerifier{RequireNonce: true, Clock: v.Clock}
	first := n.Nonce()
	for _, nonce := range []string{"", "stale"} {
		_, err := n.Check(dpopRequest("GET", target, proof("GET", target, "tok", nonce, now)), "tok")
		var pe *ProofError
		if !errors.As(err, &pe) || pe.Code != "use_dpop_nonce" {
			t.Fatalf("nonce %q: %v", nonce, err)
		}
	}
	if _, err := n.Check(dpopRequest("GET", target, proof("GET", target, "tok", first, now)), "tok"); err != nil {
		t.Fatal(err)
	}
	n.RotateNonce()
	if _, err := n.Check(dpopRequest("GET", target, proof("GET", target, "tok", first, now)), "tok"); err == nil || n.Nonce() == first {
		t.Fatal("the rotated-away nonce still accepted")
	}
	// An algorithm the server does not list.
	es := &DPoPVerifier{Algorithms: []string{"EdDSA"}, Clock: v.Clock}
	if _, err := es.Check(dpopRequest("GET", target, proof("GET", target, "tok", "", now)), "tok"); err == nil || !strings.Contains(err.Error(), "EdDSA") {
		t.Fatalf("ES256 against an EdDSA-only list: %v", err)
	}
}

// Whatever arrives as a proof, the verifier answers a *ProofError or
// accepts a proof it checked, and never panics.
func FuzzDPoPProof(f *testing.F) {
	// A fixed key: every fuzzing process must know the seed's signer.
	priv, err := ecdh.P256().NewPrivateKey([]byte("authrefresh fixed fuzzing key 01"))
	if err != nil {
		f.Fatal(err)
	}
	pub := priv.PublicKey().Bytes() // 0x04 ‖ X ‖ Y
	key := &oauth.DPoPKey{Signer: &ecdsa.PrivateKey{D: new(big.Int).SetBytes(priv.Bytes()),
		PublicKey: ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(pub[1:33]), Y: new(big.Int).SetBytes(pub[33:])}}}
	p, _ := key.Proof("GET", "http://api.example/", "tok", "", time.Unix(1_800_000_000, 0))
	thumb, _ := key.Thumbprint()
	f.Add(p)
	f.Add("e30.e30.")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIn19.e30.AA")
	f.Fuzz(func(t *testing.T, proof string) {
		v := &DPoPVerifier{Clock: func() time.Time { return time.Unix(1_800_000_000, 0) }}
		r := httptest.NewRequest("GET", "http://api.example/", nil)
		r.Header.Set("DPoP", proof)
		jkt, err := v.Check(r, "tok")
		var pe *ProofError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error of type %T", err)
		}
		// Only the key that signed the seed can make a proof that passes
		// (another spelling of its base64 may).
		if err == nil && jkt != thumb {
			t.Fatalf("accepted a proof by another key")
		}
	})
}
