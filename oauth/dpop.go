package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
)

// DPoPKey is the key a client proves possession of with DPoP (RFC 9449):
// a token the server binds to it is only usable with a fresh proof, signed
// by this key, on every request — a token copied from a log or a proxy is
// worthless without the key. The key never leaves the Signer: a KMS or HSM
// key works as well as one in memory.
//
// Proof signs one proof; Thumbprint names the key as the server records it
// in a bound token's "cnf" claim. Signer and Algorithm must not change once
// the key has signed a proof.
type DPoPKey struct {
	// Signer is the private key: *ecdsa.PrivateKey (P-256, P-384),
	// *rsa.PrivateKey, ed25519.PrivateKey, or any crypto.Signer whose
	// Public() is one of those. Required.
	Signer crypto.Signer
	// Algorithm is the JWS "alg": ES256 (the usual), ES384, RS256, PS256
	// or EdDSA. "" chooses from the key.
	Algorithm string

	head atomic.Pointer[proofHead] // the encoded header, worked out at the first proof
}

// proofHead is the part of every proof that depends only on the key: the
// base64url of its JWS header, with the algorithm and hash that sign it.
type proofHead struct {
	alg     string
	hash    crypto.Hash
	encoded string
}

// header returns k's proof header, worked out at the first proof.
func (k *DPoPKey) header() (*proofHead, error) {
	if h := k.head.Load(); h != nil {
		return h, nil
	}
	ck := &ClientKey{Signer: k.Signer, Algorithm: k.Algorithm}
	alg, hash, err := ck.algorithm()
	if err != nil {
		msg := strings.NewReplacer("authrefresh: ", "", "ClientKey", "DPoPKey", "client assertion ", "").Replace(err.Error())
		return nil, errors.New("authrefresh: DPoP key: " + msg)
	}
	jwk, err := publicJWK(k.Signer.Public())
	if err != nil {
		return nil, err
	}
	header, _ := json.Marshal(struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}{"dpop+jwt", alg, jwk})
	h := &proofHead{alg: alg, hash: hash, encoded: base64.RawURLEncoding.EncodeToString(header)}
	k.head.Store(h)
	return h, nil
}

// NewDPoPKey returns a new ES256 (P-256) DPoP key, the algorithm every
// DPoP server accepts.
func NewDPoPKey() (*DPoPKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &DPoPKey{Signer: k, Algorithm: "ES256"}, nil
}

// Proof returns a DPoP proof (the value of the "DPoP" header) for a request
// of method to target, signed now: a unique "jti", "htm" the method, "htu"
// the target without its query and fragment, "iat" now; with accessToken
// (a request to a resource server), "ath" its hash; with nonce (learnt from
// the server's DPoP-Nonce header), "nonce". Every request needs a proof of
// its own: a server refuses one it has seen.
func (k *DPoPKey) Proof(method, target, accessToken, nonce string, now time.Time) (string, error) {
	if k == nil || k.Signer == nil {
		return "", errors.New("authrefresh: DPoPKey.Signer is not set")
	}
	head, err := k.header()
	if err != nil {
		return "", err
	}
	htu, err := proofTarget(target)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	claims := struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath,omitempty"`
		Nonce string `json:"nonce,omitempty"`
	}{JTI: tokenhttp.Random(16), HTM: method, HTU: htu, IAT: now.Unix(), Nonce: nonce}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims.ATH = enc.EncodeToString(sum[:])
	}
	body, _ := json.Marshal(claims)
	signing := head.encoded + "." + enc.EncodeToString(body)
	sig, err := (&ClientKey{Signer: k.Signer}).sign([]byte(signing), head.alg, head.hash)
	if err != nil {
		return "", fmt.Errorf("authrefresh: signing a DPoP proof: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// Thumbprint is the key's JWK SHA-256 thumbprint (RFC 7638), base64url:
// what a server puts in a token bound to this key ("cnf": {"jkt": …}).
func (k *DPoPKey) Thumbprint() (string, error) {
	if k == nil || k.Signer == nil {
		return "", errors.New("authrefresh: DPoPKey.Signer is not set")
	}
	jwk, err := publicJWK(k.Signer.Public())
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(jwk)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// publicJWK is pub as a JWK with only its required members, in the
// lexicographic order RFC 7638 hashes: the proof's "jwk" header and the
// thumbprint's input are the same bytes.
func publicJWK(pub crypto.PublicKey) (json.RawMessage, error) {
	enc := base64.RawURLEncoding
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		crv := map[elliptic.Curve]string{elliptic.P256(): "P-256", elliptic.P384(): "P-384"}[p.Curve]
		if crv == "" {
			return nil, errors.New("authrefresh: DPoP key: an ECDSA key on a curve other than P-256 or P-384")
		}
		size := (p.Curve.Params().BitSize + 7) / 8
		x, y := make([]byte, size), make([]byte, size)
		p.X.FillBytes(x)
		p.Y.FillBytes(y)
		return json.RawMessage(`{"crv":"` + crv + `","kty":"EC","x":"` + enc.EncodeToString(x) + `","y":"` + enc.EncodeToString(y) + `"}`), nil
	case *rsa.PublicKey:
		e := big.NewInt(int64(p.E)).Bytes()
		return json.RawMessage(`{"e":"` + enc.EncodeToString(e) + `","kty":"RSA","n":"` + enc.EncodeToString(p.N.Bytes()) + `"}`), nil
	case ed25519.PublicKey:
		return json.RawMessage(`{"crv":"Ed25519","kty":"OKP","x":"` + enc.EncodeToString(p) + `"}`), nil
	}
	return nil, fmt.Errorf("authrefresh: DPoP key: unsupported key type %T (ECDSA P-256 or P-384, RSA, Ed25519)", pub)
}

// proofTarget is the "htu" of a request to target: its scheme, host and
// path, without query and fragment (RFC 9449 §4.2), scheme and host in
// lower case.
func proofTarget(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("authrefresh: a DPoP proof needs an absolute http(s) URL")
	}
	return (&url.URL{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Host), Path: u.Path, RawPath: u.RawPath}).String(), nil
}

// CheckDPoPKey reports whether the server takes proofs signed by k: an
// error naming the algorithms it lists when k's is not one of them (set
// DPoPKey.Algorithm, or make a key of another type), or when k cannot
// sign at all. A server that lists none is not refused: many do not say.
func (m *ProviderMetadata) CheckDPoPKey(k *DPoPKey) error {
	if k == nil || k.Signer == nil {
		return errors.New("authrefresh: DPoPKey.Signer is not set")
	}
	head, err := k.header()
	if err != nil {
		return err
	}
	if len(m.DPoPSigningAlgValuesSupported) == 0 || slices.Contains(m.DPoPSigningAlgValuesSupported, head.alg) {
		return nil
	}
	return fmt.Errorf("authrefresh: %s takes DPoP proofs signed with %s, not %s (the DPoP key's algorithm)",
		safetext.Clip(m.Issuer, 200), safetext.Clip(strings.Join(m.DPoPSigningAlgValuesSupported, ", "), 200), head.alg)
}
