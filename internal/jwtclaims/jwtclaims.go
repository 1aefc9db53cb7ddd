// Package jwtclaims reads the time claims of a JWT without verifying it:
// a client cannot verify a token meant for someone else; it only needs to
// know when the token ends.
package jwtclaims

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Claims are the time claims of a JWT, read without verifying the signature.
// A client cannot verify a token meant for someone else; it only needs to know
// when the token ends.
type Claims struct {
	ExpiresAt time.Time // "exp"; zero when absent
	IssuedAt  time.Time // "iat"; zero when absent
	NotBefore time.Time // "nbf"; zero when absent
}

// maxJWTLength bounds the work Decode does on hostile input.
const maxJWTLength = 64 << 10

// Decode reads the exp, iat and nbf claims of a compact JWS without
// verifying it. It returns an error for anything that is not a three-part
// token with a JSON object payload; the error never contains the token.
func Decode(jwt string) (Claims, error) {
	var c Claims
	if len(jwt) > maxJWTLength {
		return c, fmt.Errorf("authrefresh: JWT longer than %d bytes", maxJWTLength)
	}
	first := strings.IndexByte(jwt, '.')
	last := strings.LastIndexByte(jwt, '.')
	if first <= 0 || first == last {
		return c, fmt.Errorf("authrefresh: not a JWT (want three dot-separated parts)")
	}
	payload := jwt[first+1 : last]
	if strings.IndexByte(payload, '.') >= 0 {
		return c, fmt.Errorf("authrefresh: not a JWT (want three dot-separated parts)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return c, fmt.Errorf("authrefresh: JWT payload is not base64url")
	}
	var claims struct {
		Exp json.Number `json:"exp"`
		Iat json.Number `json:"iat"`
		Nbf json.Number `json:"nbf"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return c, fmt.Errorf("authrefresh: JWT payload is not a JSON object with numeric times")
	}
	if c.ExpiresAt, err = numericDate(claims.Exp); err != nil {
		return Claims{}, fmt.Errorf("authrefresh: JWT exp: %w", err)
	}
	if c.IssuedAt, err = numericDate(claims.Iat); err != nil {
		return Claims{}, fmt.Errorf("authrefresh: JWT iat: %w", err)
	}
	if c.NotBefore, err = numericDate(claims.Nbf); err != nil {
		return Claims{}, fmt.Errorf("authrefresh: JWT nbf: %w", err)
	}
	return c, nil
}

// numericDate converts an RFC 7519 NumericDate (seconds, possibly fractional).
func numericDate(n json.Number) (time.Time, error) {
	if n == "" {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("not a valid NumericDate")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
