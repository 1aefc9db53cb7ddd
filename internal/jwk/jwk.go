// Package jwk reads the public keys of JWKs (RFC 7517): an EC point is
// checked to be on its curve, an RSA key is held to sensible sizes. The
// reference server reads DPoP proofs' keys with it, the BFF a provider's
// signing keys.
package jwk

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"math/big"
)

// Key is the members of a public JWK that name its key.
type Key struct {
	Kty, Crv, X, Y, N, E string
}

// Public is k's public key: EC P-256 or P-384 (on its curve), RSA of 2048
// to 8192 bits, or Ed25519.
func (k Key) Public() (crypto.PublicKey, error) {
	b := func(s string) []byte {
		v, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil
		}
		return v
	}
	switch k.Kty {
	case "EC":
		curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[k.Crv]
		x, y := b(k.X), b(k.Y)
		if curve == nil || len(x) == 0 || len(y) == 0 {
			return nil, errors.New("jwk is not an EC P-256 or P-384 key")
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("jwk coordinates of the wrong size")
		}
		// The point is checked by parsing its uncompressed encoding.
		point := append(append([]byte{4}, x...), y...)
		if _, err := map[string]ecdh.Curve{"P-256": ecdh.P256(), "P-384": ecdh.P384()}[k.Crv].NewPublicKey(point); err != nil {
			return nil, errors.New("jwk is not a point of its curve")
		}
		return &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
	case "RSA":
		n, e := b(k.N), b(k.E)
		if len(n) < 256 || len(n) > 1024 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("jwk is not an RSA key of 2048 to 8192 bits")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "OKP":
		x := b(k.X)
		if k.Crv != "Ed25519" || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("jwk is not an Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("jwk kty is not EC, RSA or OKP")
}
