package authserver

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of the server's access tokens.
type Claims struct {
	jwt.RegisteredClaims
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	SessionID string `json:"sid,omitempty"` // the refresh token family
}

// TokenError says why a token was refused. Cause is a short machine-readable
// word ("missing", "malformed", "expired", "signature", "algorithm",
// "issuer", "audience", "not_yet_valid", "revoked"); the error never contains
// the token.
type TokenError struct {
	Cause string
	Err   error
}

func (e *TokenError) Error() string {
	if e.Err == nil {
		return "invalid token: " + e.Cause
	}
	return fmt.Sprintf("invalid token: %s: %v", e.Cause, e.Err)
}

// Unwrap returns the underlying jwt error.
func (e *TokenError) Unwrap() error { return e.Err }

// Verifier checks access tokens: signature with the pinned algorithm and a
// known kid, and the exp, iss and aud claims (all required). Its Middleware
// protects any Go handler with RFC 6750 semantics.
type Verifier struct {
	// Algorithm is the only accepted "alg" ("EdDSA", "ES256", "RS256").
	Algorithm string
	// Keys maps "kid" to public key. A token whose kid is unknown is refused.
	Keys map[string]crypto.PublicKey
	// Issuer and Audience must match "iss" and one "aud".
	Issuer, Audience string
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Realm is the realm of the Bearer challenge; "" means "authrefresh".
	Realm string
	// ExpiredStatus is the status of a refused token: 401 (default) or 403.
	// A missing token is always 401.
	ExpiredStatus int
	// Revoked, if set, refuses tokens it returns true for (cause "revoked").
	Revoked func(*Claims) bool
	// OnRefuse, if set, is told the cause of each refusal (for counters).
	OnRefuse func(cause string)
	// AcceptRawToken also accepts an Authorization header holding the bare
	// token without the "Bearer " scheme, as some hand-written interceptors send it.
	AcceptRawToken bool
}

// Verify parses and checks one token.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, &TokenError{Cause: "missing"}
	}
	clock := v.Clock
	if clock == nil {
		clock = time.Now
	}
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := v.Keys[kid]
		if !ok {
			return nil, errors.New("unknown key id")
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{v.Algorithm}),
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(clock),
	)
	if err != nil {
		return nil, &TokenError{Cause: tokenErrorCause(err), Err: errors.Unwrap(err)}
	}
	if v.Revoked != nil && v.Revoked(claims) {
		return nil, &TokenError{Cause: "revoked"}
	}
	return claims, nil
}

func tokenErrorCause(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not_yet_valid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing_claim"
	case strings.Contains(err.Error(), "signing method"):
		return "algorithm"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signature"
	}
	return "invalid"
}

type claimsKey struct{}

// ClaimsFromContext returns the claims Middleware verified for this request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Middleware lets a request through only with a valid bearer token. A missing
// token gets 401 with a bare challenge (RFC 6750 §3.1); a bad one gets
// ExpiredStatus with error="invalid_token". Both have a JSON body.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := v.bearer(r.Header.Get("Authorization"))
		if !ok {
			v.refuse(w, &TokenError{Cause: "missing"})
			return
		}
		if token == "" {
			v.refuse(w, &TokenError{Cause: "malformed", Err: errors.New("not a bearer token")})
			return
		}
		claims, err := v.Verify(token)
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) {
				te = &TokenError{Cause: "invalid"}
			}
			v.refuse(w, te)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

func (v *Verifier) bearer(h string) (string, bool) {
	if h == "" {
		return "", false
	}
	if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(token)
		return token, token != ""
	}
	if v.AcceptRawToken && !strings.Contains(h, " ") {
		return h, true
	}
	return "", true // a header that is not a bearer token: invalid, not missing
}

func (v *Verifier) refuse(w http.ResponseWriter, te *TokenError) {
	if v.OnRefuse != nil {
		v.OnRefuse(te.Cause)
	}
	realm := v.Realm
	if realm == "" {
		realm = "authrefresh"
	}
	if te.Cause == "missing" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", realm))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": "a bearer token is required"})
		return
	}
	status := v.ExpiredStatus
	if status == 0 {
		status = http.StatusUnauthorized
	}
	desc := "the access token is " + map[string]string{"expired": "expired", "revoked": "revoked", "not_yet_valid": "not valid yet"}[te.Cause]
	if desc == "the access token is " {
		desc = "the access token is invalid (" + te.Cause + ")"
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=\"invalid_token\", error_description=%q", realm, desc))
	writeJSON(w, status, map[string]string{"error": "invalid_token", "error_description": desc})
}
