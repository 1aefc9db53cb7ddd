package authserver

import (
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// seenAssertions remembers the jti of accepted client assertions until
// they expire: a replayed assertion is refused (RFC 7523 §3).
type seenAssertions struct {
	mu  sync.Mutex
	jti map[string]time.Time
}

// assertedClient authenticates a client by its private_key_jwt assertion:
// signed by the key in Config.ClientKeys, iss and sub the client, aud this
// server's token endpoint (or its issuer), not expired, jti never seen.
func (s *Server) assertedClient(r *http.Request, form url.Values) (string, *grantError) {
	refuse := func(desc string) (string, *grantError) {
		return "", &grantError{status: http.StatusUnauthorized, code: "invalid_client", description: desc}
	}
	if form.Get("client_assertion_type") != jwtBearer {
		return refuse("client_assertion_type must be " + jwtBearer)
	}
	now := s.now()
	var claims jwt.RegisteredClaims
	var id string
	_, err := jwt.ParseWithClaims(form.Get("client_assertion"), &claims, func(t *jwt.Token) (any, error) {
		id, _ = claims.GetSubject()
		key, ok := s.cfg.ClientKeys[id]
		if !ok {
			return nil, errUnknownClient
		}
		return key, nil
	}, jwt.WithValidMethods([]string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithExpirationRequired())
	if err != nil {
		return refuse("the client assertion is invalid: " + err.Error())
	}
	base := s.baseURL(r)
	audOK := false
	for _, aud := range claims.Audience {
		audOK = audOK || aud == base+"/oauth/token" || aud == base+r.URL.Path || aud == s.cfg.Issuer
	}
	switch {
	case claims.Issuer != id:
		return refuse("the assertion's iss and sub must both be the client id")
	case form.Get("client_id") != "" && form.Get("client_id") != id:
		return refuse("client_id differs from the assertion's subject")
	case !audOK:
		return refuse("the assertion's aud must be the token endpoint or the issuer")
	case claims.ID == "":
		return refuse("the assertion needs a jti")
	case claims.ExpiresAt.Sub(now) > 10*time.Minute:
		return refuse("the assertion lives too long (at most 10 minutes)")
	}
	s.assertions.mu.Lock()
	defer s.assertions.mu.Unlock()
	if s.assertions.jti == nil {
		s.assertions.jti = map[string]time.Time{}
	}
	if len(s.assertions.jti) > 1000 {
		for jti, exp := range s.assertions.jti {
			if !now.Before(exp) {
				delete(s.assertions.jti, jti)
			}
		}
	}
	key := id + " " + claims.ID
	if _, seen := s.assertions.jti[key]; seen {
		return refuse("the assertion was already used (a replayed jti)")
	}
	s.assertions.jti[key] = claims.ExpiresAt.Time
	return id, nil
}
