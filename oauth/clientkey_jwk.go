package oauth

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// maxJWKLength bounds what ParseClientKeyJWK reads (an RSA-4096 JWK is
// about 3 KB).
const maxJWKLength = 64 << 10

// ParseClientKeyJWK reads a private key as a JWK (RFC 7517), as providers
// that register keys by JWKS hand them out: EC (P-256, P-384), RSA or OKP
// (Ed25519). The JWK's "kid" and "alg", if any, become the ClientKey's
// KeyID and Algorithm. A JWK Set with exactly one key is accepted too. The
// public parts must match the private ones; the error never quotes the key.
func ParseClientKeyJWK(data []byte) (*ClientKey, error) { return parseJWK(data, true) }

func parseJWK(data []byte, setAllowed bool) (*ClientKey, error) {
	if len(data) > maxJWKLength {
		return nil, fmt.Errorf("authrefresh: a JWK longer than %d bytes", maxJWKLength)
	}
	var jwk struct {
		Kty, Crv, Kid, Alg, Use string
		D, X, Y, N, E, P, Q     string
		Keys                    []json.RawMessage
	}
	if json.Unmarshal(data, &jwk) != nil {
		return nil, errors.New("authrefresh: the client key is not a JWK (a JSON object)")
	}
	if jwk.Keys != nil {
		if !setAllowed {
			return nil, errors.New("authrefresh: a JWK Set inside a JWK Set")
		}
		if len(jwk.Keys) != 1 {
			return nil, fmt.Errorf("authrefresh: the JWK Set holds %d keys; give the one to sign with", len(jwk.Keys))
		}
		return parseJWK(jwk.Keys[0], false)
	}
	if jwk.D == "" {
		return nil, errors.New("authrefresh: the JWK has no private part (\"d\"): it is a public key")
	}
	b := func(name, s string) ([]byte, error) {
		v, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(v) == 0 {
			return nil, fmt.Errorf("authrefresh: the JWK's %q is not base64url", name)
		}
		return v, nil
	}
	n := func(name, s string) (*big.Int, error) {
		v, err := b(name, s)
		if err != nil {
			return nil, err
		}
		return new(big.Int).SetBytes(v), nil
	}
	key := &ClientKey{KeyID: jwk.Kid, Algorithm: jwk.Alg}
	switch jwk.Kty {
	case "EC":
		curve, ok := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[jwk.Crv]
		if !ok {
			return nil, fmt.Errorf("authrefresh: JWK curve %q: want P-256 or P-384", jwk.Crv)
		}
		d, err := b("d", jwk.D)
		if err != nil {
			return nil, err
		}
		x, err1 := n("x", jwk.X)
		y, err2 := n("y", jwk.Y)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		ecdhCurve := map[string]ecdh.Curve{"P-256": ecdh.P256(), "P-384": ecdh.P384()}[jwk.Crv]
		size := (curve.Params().BitSize + 7) / 8
		if len(d) != size {
			return nil, errors.New("authrefresh: the JWK's \"d\" has the wrong length for its curve")
		}
		priv, err := ecdhCurve.NewPrivateKey(d) // checks the scalar
		if err != nil {
			return nil, errors.New("authrefresh: the JWK's \"d\" is not a key of its curve")
		}
		pub := priv.PublicKey().Bytes() // 0x04 ‖ X ‖ Y
		if new(big.Int).SetBytes(pub[1:1+size]).Cmp(x) != 0 || new(big.Int).SetBytes(pub[1+size:]).Cmp(y) != 0 {
			return nil, errors.New("authrefresh: the JWK's \"x\" and \"y\" are not the public key of its \"d\"")
		}
		key.Signer = &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: curve, X: x, Y: y}, D: new(big.Int).SetBytes(d)}
	case "RSA":
		var parts [5]*big.Int
		for i, f := range []struct{ name, v string }{{"n", jwk.N}, {"e", jwk.E}, {"d", jwk.D}, {"p", jwk.P}, {"q", jwk.Q}} {
			v, err := n(f.name, f.v)
			if err != nil {
				return nil, err
			}
			parts[i] = v
		}
		if parts[0].BitLen() < 2048 || parts[0].BitLen() > 8192 || !parts[1].IsInt64() || parts[1].Int64() > 1<<31 {
			return nil, errors.New("authrefresh: the JWK's RSA modulus must be 2048 to 8192 bits, with a small exponent")
		}
		priv := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: parts[0], E: int(parts[1].Int64())}, D: parts[2], Primes: []*big.Int{parts[3], parts[4]}}
		if err := priv.Validate(); err != nil {
			return nil, errors.New("authrefresh: the JWK's RSA parts do not make a valid key")
		}
		priv.Precompute()
		key.Signer = priv
	case "OKP":
		if jwk.Crv != "Ed25519" {
			return nil, fmt.Errorf("authrefresh: JWK curve %q: want Ed25519", jwk.Crv)
		}
		d, err1 := b("d", jwk.D)
		x, err2 := b("x", jwk.X)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if len(d) != ed25519.SeedSize {
			return nil, errors.New("authrefresh: the JWK's \"d\" is not an Ed25519 seed")
		}
		priv := ed25519.NewKeyFromSeed(d)
		if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(x)) {
			return nil, errors.New("authrefresh: the JWK's \"x\" is not the public key of its \"d\"")
		}
		key.Signer = priv
	default:
		return nil, fmt.Errorf("authrefresh: JWK key type %q: want EC, RSA or OKP", jwk.Kty)
	}
	if _, _, err := key.algorithm(); err != nil {
		return nil, err
	}
	return key, nil
}
