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
	// Confirmation binds the token to a DPoP key (RFC 9449 §6): it is
	// only accepted with a proof signed by that key.
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the "cnf" claim of a DPoP-bound token.
type Confirmation struct {
	JKT string `json:"jkt"` // the key's JWK SHA-256 thumbprint (RFC 7638)
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
	// DPoP checks the proofs of tokens bound to a key ("cnf": {"jkt"}),
	// sent as "Authorization: DPoP …" (RFC 9449 §7). nil refuses bound
	// tokens; a bound token sent as a bearer token is refused either way.
	DPoP *DPoPVerifier
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

// Middleware lets a request through only with a valid token: a bearer
// token, or a DPoP-bound one with a proof by its key. A missing token gets
// 401 with a bare challenge (RFC 6750 §3.1); a bad one gets ExpiredStatus
// with error="invalid_token"; a bad proof 401 with error="invalid_dpop_proof"
// or "use_dpop_nonce" (RFC 9449 §7.1). All have a JSON body.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := v.credentials(r.Header.Get("Authorization"))
		if scheme == "DPoP" && v.DPoP != nil {
			if nonce := v.DPoP.Nonce(); nonce != "" {
				w.Header().Set("DPoP-Nonce", nonce)
			}
		}
		if !ok {
			v.refuse(w, &TokenError{Cause: "missing"}, scheme)
			return
		}
		if token == "" {
			v.refuse(w, &TokenError{Cause: "malformed", Err: errors.New("not a bearer or DPoP token")}, scheme)
			return
		}
		claims, err := v.Verify(token)
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) {
				te = &TokenError{Cause: "invalid"}
			}
			v.refuse(w, te, scheme)
			return
		}
		switch bound := claims.Confirmation != nil && claims.Confirmation.JKT != ""; {
		case bound && scheme != "DPoP":
			v.refuse(w, &TokenError{Cause: "dpop_bound", Err: errors.New("the token is bound to a DPoP key: send it with the DPoP scheme and a proof")}, scheme)
			return
		case !bound && scheme == "DPoP":
			v.refuse(w, &TokenError{Cause: "malformed", Err: errors.New("a bearer token sent with the DPoP scheme")}, scheme)
			return
		case bound:
			if v.DPoP == nil {
				v.refuse(w, &TokenError{Cause: "dpop_bound", Err: errors.New("DPoP-bound tokens are not accepted here")}, scheme)
				return
			}
			jkt, err := v.DPoP.Check(r, token)
			if err == nil && jkt != claims.Confirmation.JKT {
				err = badProof("the proof is signed by a key other than the token's")
			}
			if err != nil {
				v.refuseProof(w, err.(*ProofError))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

// credentials reads the Authorization header: its scheme ("Bearer",
// "DPoP", "" for none or another) and token; ok is false when there is
// no header.
func (v *Verifier) credentials(h string) (scheme, token string, ok bool) {
	if h == "" {
		return "", "", false
	}
	if s, t, found := strings.Cut(h, " "); found {
		t = strings.TrimSpace(t)
		switch {
		case strings.EqualFold(s, "Bearer"):
			return "Bearer", t, true
		case strings.EqualFold(s, "DPoP"):
			return "DPoP", t, true
		}
	}
	if v.AcceptRawToken && !strings.Contains(h, " ") {
		return "Bearer", h, true
	}
	return "", "", true // a header that is not a token: invalid, not missing
}

// refuseProof answers a refused DPoP proof: 401 with a DPoP challenge.
func (v *Verifier) refuseProof(w http.ResponseWriter, pe *ProofError) {
	cause := "dpop_proof"
	if pe.Code == "use_dpop_nonce" {
		cause = "dpop_nonce"
	}
	if v.OnRefuse != nil {
		v.OnRefuse(cause)
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("DPoP algs=%q, error=%q, error_description=%q", strings.Join(v.dpopAlgorithms(), " "), pe.Code, pe.Reason))
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": pe.Code, "error_description": pe.Reason})
}

func (v *Verifier) dpopAlgorithms() []string {
	if v.DPoP != nil && v.DPoP.Algorithms != nil {
		return v.DPoP.Algorithms
	}
	return DPoPAlgorithms
}

func (v *Verifier) refuse(w http.ResponseWriter, te *TokenError, scheme string) {
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
	if scheme != "DPoP" {
		scheme = "Bearer"
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("%s realm=%q, error=\"invalid_token\", error_description=%q", scheme, realm, desc))
	writeJSON(w, status, map[string]string{"error": "invalid_token", "error_description": desc})
}
