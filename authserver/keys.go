package authserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// signingKey is the server's one signing key with its JWKS id.
type signingKey struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func newSigningKey(alg string) (*signingKey, error) {
	k := &signingKey{alg: alg}
	var err error
	switch alg {
	case "EdDSA":
		k.method = jwt.SigningMethodEdDSA
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	case "ES256":
		k.method = jwt.SigningMethodES256
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		k.method = jwt.SigningMethodRS256
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("authserver: unsupported algorithm %q (want EdDSA, ES256 or RS256)", alg)
	}
	if err != nil {
		return nil, err
	}
	jwk := publicJWK(k.priv.Public(), "", alg)
	// kid: RFC 7638-like thumbprint of the public parts, short.
	sum := sha256.Sum256([]byte(fmt.Sprint(jwk)))
	k.kid = base64.RawURLEncoding.EncodeToString(sum[:9])
	return k, nil
}

// publicJWK renders a public key as a JWK (RFC 7517/8037).
func publicJWK(pub crypto.PublicKey, kid, alg string) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]string{"use": "sig", "alg": alg}
	if kid != "" {
		jwk["kid"] = kid
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		jwk["kty"], jwk["crv"], jwk["x"] = "OKP", "Ed25519", b64(p)
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		jwk["kty"], jwk["crv"] = "EC", p.Curve.Params().Name
		jwk["x"], jwk["y"] = b64(p.X.FillBytes(make([]byte, size))), b64(p.Y.FillBytes(make([]byte, size)))
	case *rsa.PublicKey:
		jwk["kty"], jwk["n"], jwk["e"] = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	}
	return jwk
}
