package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ClientKey authenticates a client with private_key_jwt (RFC 7523 §2.2,
// OpenID Connect Core §9): each token request carries a short-lived JWT
// the client signs, so no shared secret is sent. The key never leaves the
// Signer: a KMS or HSM key works as well as one in memory.
type ClientKey struct {
	// Signer is the private key: *ecdsa.PrivateKey (P-256, P-384),
	// *rsa.PrivateKey, ed25519.PrivateKey, or any crypto.Signer whose
	// Public() is one of those. Required.
	Signer crypto.Signer
	// Algorithm is the JWS "alg": ES256, ES384, RS256, PS256 or EdDSA. ""
	// chooses from the key: ES256 or ES384 by curve, RS256, EdDSA.
	Algorithm string
	// KeyID is the JWS "kid", for a server that holds several of the
	// client's keys.
	KeyID string
	// Audience is the assertion's "aud"; "" means the URL of the endpoint
	// called (the token endpoint). Some servers want their issuer: set it.
	Audience string
	// Lifetime is each assertion's; 0 means 60 s. Assertions are dated by
	// this machine's clock (the server checks "exp" against its own).
	Lifetime time.Duration
}

// ParseClientKeyPEM reads a private key in PEM (PKCS #8, SEC 1 EC or
// PKCS #1 RSA), as an identity provider hands one out. The error never
// quotes the key.
func ParseClientKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("authrefresh: no PEM block in the client key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("authrefresh: a PEM block of type %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("authrefresh: the client key's PEM block does not parse as a private key")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("authrefresh: a %T cannot sign", key)
	}
	return signer, nil
}

// algorithm is the JWS alg the key signs with, and the hash it signs.
func (k *ClientKey) algorithm() (string, crypto.Hash, error) {
	if k == nil || k.Signer == nil {
		return "", 0, errors.New("authrefresh: ClientKey.Signer is not set")
	}
	pub := k.Signer.Public()
	alg := k.Algorithm
	if alg == "" {
		switch p := pub.(type) {
		case *ecdsa.PublicKey:
			alg = map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384"}[p.Curve]
		case *rsa.PublicKey:
			alg = "RS256"
		case ed25519.PublicKey:
			alg = "EdDSA"
		}
	}
	fits := func(ok bool, h crypto.Hash) (string, crypto.Hash, error) {
		if !ok {
			return "", 0, fmt.Errorf("authrefresh: a %T key cannot sign %q", pub, alg)
		}
		return alg, h, nil
	}
	switch alg {
	case "ES256", "ES384":
		p, ok := pub.(*ecdsa.PublicKey)
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384()}[alg]
		return fits(ok && p.Curve == want, map[string]crypto.Hash{"ES256": crypto.SHA256, "ES384": crypto.SHA384}[alg])
	case "RS256", "PS256":
		_, ok := pub.(*rsa.PublicKey)
		return fits(ok, crypto.SHA256)
	case "EdDSA":
		_, ok := pub.(ed25519.PublicKey)
		return fits(ok, 0)
	case "":
		return "", 0, fmt.Errorf("authrefresh: no JWS algorithm for a %T key; set ClientKey.Algorithm", pub)
	}
	return "", 0, fmt.Errorf("authrefresh: unsupported client assertion algorithm %q (ES256, ES384, RS256, PS256, EdDSA)", alg)
}

// assertion is a client assertion of clientID for a request to endpoint,
// signed now: iss and sub the client, aud the endpoint (or Audience), a
// random jti (a server refuses a replayed one), a short exp.
func (k *ClientKey) assertion(clientID, endpoint string, now time.Time) (string, error) {
	alg, hash, err := k.algorithm()
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	life := k.Lifetime
	if life <= 0 {
		life = time.Minute
	}
	aud := k.Audience
	if aud == "" {
		aud = endpoint
	}
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if k.KeyID != "" {
		header["kid"] = k.KeyID
	}
	claims := map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": hex.EncodeToString(jti[:]),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(life).Unix()}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sig, err := k.sign([]byte(signing), alg, hash)
	if err != nil {
		return "", fmt.Errorf("authrefresh: signing the client assertion: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// sign produces the JWS signature of msg.
func (k *ClientKey) sign(msg []byte, alg string, hash crypto.Hash) ([]byte, error) {
	if alg == "EdDSA" {
		return k.Signer.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	var digest []byte
	switch hash {
	case crypto.SHA256:
		sum := sha256.Sum256(msg)
		digest = sum[:]
	case crypto.SHA384:
		sum := sha512.Sum384(msg)
		digest = sum[:]
	}
	var opts crypto.SignerOpts = hash
	if alg == "PS256" {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hash}
	}
	sig, err := k.Signer.Sign(rand.Reader, digest, opts)
	if err != nil || (alg != "ES256" && alg != "ES384") {
		return sig, err
	}
	// JWS wants R‖S, each the curve's size (RFC 7518 §3.4), not ASN.1.
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, errors.New("the signer's ECDSA signature is not ASN.1")
	}
	size := (k.Signer.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
