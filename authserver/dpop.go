package authserver

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authrefresh/authrefresh/internal/jwk"
	"github.com/golang-jwt/jwt/v5"
)

// DPoPAlgorithms are the proof algorithms a DPoPVerifier accepts by
// default, as the metadata announces them
// (dpop_signing_alg_values_supported).
var DPoPAlgorithms = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}

// maxProof bounds a proof the verifier reads: an RSA-4096 proof is ~2 KB.
const maxProof = 8 << 10

// DPoPVerifier checks DPoP proofs (RFC 9449 §4.3) for the token endpoint
// and for a protected API: the JWS signature by the key in its header,
// "typ" dpop+jwt, an allowed "alg", "htm" and "htu" those of the request,
// "iat" within the window, "jti" never seen before, "ath" the hash of the
// access token sent with it, and the server's current nonce when nonces
// are required. It is safe for concurrent use; the zero value accepts
// proofs without nonces.
type DPoPVerifier struct {
	// Algorithms are the accepted "alg" values; nil means DPoPAlgorithms.
	Algorithms []string
	// RequireNonce makes every proof carry the current nonce (RFC 9449
	// §8–9): a proof without it is answered use_dpop_nonce, with the nonce
	// in the DPoP-Nonce header.
	RequireNonce bool
	// Window is how far "iat" may be from now, either way; 0 means 60 s.
	Window time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time

	mu      sync.Mutex
	nonce   string
	seen    map[string]time.Time // jti → when it may be forgotten
	replays atomic.Uint64
	proofs  atomic.Uint64
}

// ProofError is a refused proof: Code is "invalid_dpop_proof" or
// "use_dpop_nonce"; Reason says why, without quoting the proof.
type ProofError struct {
	Code, Reason string
}

func (e *ProofError) Error() string { return "DPoP proof refused: " + e.Code + ": " + e.Reason }

func badProof(reason string) *ProofError {
	return &ProofError{Code: "invalid_dpop_proof", Reason: reason}
}

func (v *DPoPVerifier) now() time.Time {
	if v.Clock != nil {
		return v.Clock()
	}
	return time.Now()
}

// Nonce is the nonce proofs must carry now ("" when not required).
func (v *DPoPVerifier) Nonce() string {
	if !v.RequireNonce {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonce == "" {
		v.nonce = newOpaqueToken()[:22]
	}
	return v.nonce
}

// RotateNonce replaces the nonce: proofs with the old one are answered
// use_dpop_nonce from now on.
func (v *DPoPVerifier) RotateNonce() {
	v.mu.Lock()
	v.nonce = newOpaqueToken()[:22]
	v.mu.Unlock()
}

// Replays is how many proofs were refused because their "jti" had been
// seen: a client that reuses a proof.
func (v *DPoPVerifier) Replays() uint64 { return v.replays.Load() }

// Proofs is how many proofs were accepted.
func (v *DPoPVerifier) Proofs() uint64 { return v.proofs.Load() }

// Check verifies the proof of r (its DPoP header) for a request that
// carries accessToken ("" at the token endpoint), and returns the JWK
// SHA-256 thumbprint of the key that signed it: what a bound token's
// "cnf" holds.
func (v *DPoPVerifier) Check(r *http.Request, accessToken string) (string, error) {
	values := r.Header.Values("DPoP")
	if len(values) != 1 {
		return "", badProof("exactly one DPoP header is required")
	}
	jkt, claims, err := v.parse(values[0])
	if err != nil {
		return "", err
	}
	now := v.now()
	window := v.Window
	if window <= 0 {
		window = time.Minute
	}
	iat := time.Unix(claims.IAT, 0)
	switch {
	case claims.JTI == "" || len(claims.JTI) > 256:
		return "", badProof("jti missing or too long")
	case claims.HTM != r.Method:
		return "", badProof("htm is not the request's method")
	case !sameTarget(claims.HTU, requestURL(r)):
		return "", badProof("htu is not the request's URL")
	case iat.Before(now.Add(-window)) || iat.After(now.Add(window)):
		return "", badProof("iat is outside the accepted window")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if subtle.ConstantTimeCompare([]byte(claims.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return "", badProof("ath is not the hash of the access token")
		}
	} else if claims.ATH != "" {
		return "", badProof("ath on a token request")
	}
	if want := v.Nonce(); want != "" && claims.Nonce != want {
		return "", &ProofError{Code: "use_dpop_nonce", Reason: "the proof must carry the server's current nonce"}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	if len(v.seen) >= 1<<16 {
		for jti, until := range v.seen {
			if now.After(until) {
				delete(v.seen, jti)
			}
		}
	}
	key := jkt + "." + claims.JTI
	if until, ok := v.seen[key]; ok && !now.After(until) {
		v.replays.Add(1)
		return "", badProof("the proof was already used (jti seen)")
	}
	v.seen[key] = iat.Add(window)
	v.proofs.Add(1)
	return jkt, nil
}

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce"`
}

// parse checks a proof's header and signature and returns the key's
// thumbprint and the claims.
func (v *DPoPVerifier) parse(proof string) (string, *proofClaims, error) {
	if len(proof) > maxProof {
		return "", nil, badProof("too long")
	}
	head, _, ok := strings.Cut(proof, ".")
	if !ok {
		return "", nil, badProof("not a JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", nil, badProof("header is not base64url")
	}
	var header struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}
	if json.Unmarshal(raw, &header) != nil {
		return "", nil, badProof("header is not JSON")
	}
	algs := v.Algorithms
	if algs == nil {
		algs = DPoPAlgorithms
	}
	switch {
	case header.Typ != "dpop+jwt":
		return "", nil, badProof(`typ is not "dpop+jwt"`)
	case !slices.Contains(algs, header.Alg):
		return "", nil, badProof("alg is not one of " + strings.Join(algs, ", "))
	}
	pub, jkt, err := proofKey(header.JWK)
	if err != nil {
		return "", nil, err
	}
	claims := &proofClaims{}
	var mc jwt.MapClaims
	_, err = jwt.ParseWithClaims(proof, &mc, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{header.Alg}), jwt.WithoutClaimsValidation())
	if err != nil {
		return "", nil, badProof("the signature does not verify with the header's key")
	}
	body, _ := json.Marshal(mc)
	if json.Unmarshal(body, claims) != nil {
		return "", nil, badProof("claims of the wrong types")
	}
	return jkt, claims, nil
}

// proofKey reads a proof's public JWK and its RFC 7638 thumbprint. A JWK
// with a private part is refused.
func proofKey(raw json.RawMessage) (crypto.PublicKey, string, error) {
	var k struct{ Kty, Crv, X, Y, N, E, D string }
	if len(raw) == 0 || json.Unmarshal(raw, &k) != nil {
		return nil, "", badProof("jwk missing or not an object")
	}
	if k.D != "" {
		return nil, "", badProof("jwk holds a private key")
	}
	pub, err := jwk.Key{Kty: k.Kty, Crv: k.Crv, X: k.X, Y: k.Y, N: k.N, E: k.E}.Public()
	if err != nil {
		return nil, "", badProof(err.Error())
	}
	// RFC 7638: the required members, in lexicographic order.
	var canonical string
	switch k.Kty {
	case "EC":
		canonical = `{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
	case "RSA":
		canonical = `{"e":"` + k.E + `","kty":"RSA","n":"` + k.N + `"}`
	case "OKP":
		canonical = `{"crv":"Ed25519","kty":"OKP","x":"` + k.X + `"}`
	}
	sum := sha256.Sum256([]byte(canonical))
	return pub, base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// requestURL is the URL a client addressed r to, without query.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.Path
}

// sameTarget compares a proof's htu with the request's URL: scheme and
// host without case, the path exactly, query and fragment ignored.
func sameTarget(htu, target string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(target)
	if err1 != nil || err2 != nil || a.Host == "" {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.EscapedPath() == b.EscapedPath()
}

// DPoPNonce is the nonce DPoP proofs must carry now ("" unless
// Config.DPoPNonce): what a test sends without asking first.
func (s *Server) DPoPNonce() string { return s.dpop.Nonce() }

// RotateDPoPNonce replaces the nonce DPoP proofs must carry (with
// Config.DPoPNonce): every client's next proof is answered use_dpop_nonce
// once, with the new nonce.
func (s *Server) RotateDPoPNonce() { s.dpop.RotateNonce() }

// tokenProof checks the DPoP proof of a token request, if it has one, and
// returns the thumbprint of its key ("" without a proof). With nonces
// required, every answer carries the current one.
func (s *Server) tokenProof(w http.ResponseWriter, r *http.Request) (string, *grantError) {
	if nonce := s.dpop.Nonce(); nonce != "" {
		w.Header().Set("DPoP-Nonce", nonce)
	}
	if r.Header.Get("DPoP") == "" {
		return "", nil
	}
	jkt, err := s.dpop.Check(r, "")
	if err != nil {
		pe := err.(*ProofError)
		s.countProofError(pe)
		return "", &grantError{status: http.StatusBadRequest, code: pe.Code, description: pe.Reason}
	}
	return jkt, nil
}

func (s *Server) countProofError(pe *ProofError) {
	if pe.Code == "use_dpop_nonce" {
		s.counters.dpopNonceAsks.Add(1)
	} else {
		s.counters.dpopBadProofs.Add(1)
	}
}
