package authserver

import (
	"cmp"
	"crypto/subtle"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// handleOAuthToken: POST /oauth/token, RFC 6749 form grants.
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Pragma", "no-cache")
	form, gerr := s.oauthForm(r)
	if gerr != nil {
		gerr.write(w)
		return
	}
	clientID, gerr := s.clientAuth(r, form)
	if gerr != nil {
		gerr.write(w)
		return
	}
	jkt, gerr := s.tokenProof(w, r)
	if gerr != nil {
		gerr.write(w)
		return
	}
	var answer *tokenResponse
	switch form.Get("grant_type") {
	case "password":
		user, pw := form.Get("username"), form.Get("password")
		if user == "" || pw == "" {
			gerr = &grantError{status: http.StatusBadRequest, code: "invalid_request", description: "username and password are required"}
			break
		}
		answer, gerr = s.passwordGrant(r, user, pw, clientID, form.Get("scope"), jkt)
	case "refresh_token":
		answer, gerr = s.refreshGrant(r.Context(), form.Get("refresh_token"), clientID, form.Get("scope"), jkt, true)
	case "client_credentials":
		if _, keyed := s.cfg.ClientKeys[clientID]; clientID == "" || (s.cfg.Clients[clientID] == "" && !keyed) {
			gerr = &grantError{status: http.StatusUnauthorized, code: "invalid_client", description: "client_credentials needs a confidential client"}
			break
		}
		// An audience (Auth0's "audience", RFC 8707's "resource") names the
		// API the token is for: this server issues tokens for one.
		if aud := cmp.Or(form.Get("audience"), form.Get("resource")); aud != "" && aud != s.cfg.Audience {
			gerr = &grantError{status: http.StatusBadRequest, code: "invalid_target", description: "unknown audience; this server issues tokens for " + s.cfg.Audience}
			break
		}
		now := s.now()
		access, err := s.issueAccess(clientID, clientID, form.Get("scope"), "", jkt, now)
		if err != nil {
			gerr = &grantError{status: http.StatusInternalServerError, code: "server_error", description: "cannot sign the token"}
			break
		}
		s.counters.clientTokens.Add(1)
		answer = &tokenResponse{AccessToken: access, TokenType: tokenType(jkt), ExpiresIn: int64(s.cfg.AccessTTL.Round(time.Second) / time.Second), Scope: form.Get("scope")}
	case "authorization_code":
		answer, gerr = s.codeGrant(form, clientID, jkt)
	case deviceGrantType:
		answer, gerr = s.pollDevice(form, clientID, jkt)
	case "":
		gerr = &grantError{status: http.StatusBadRequest, code: "invalid_request", description: "grant_type is required"}
	default:
		gerr = &grantError{status: http.StatusBadRequest, code: "unsupported_grant_type", description: "supported: password, refresh_token, client_credentials, authorization_code, " + deviceGrantType}
	}
	if gerr != nil {
		gerr.write(w)
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

// oauthForm reads an RFC 6749 form body (and only a form body).
func (s *Server) oauthForm(r *http.Request) (url.Values, *grantError) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, &grantError{status: http.StatusBadRequest, code: "invalid_request", description: "the body must be application/x-www-form-urlencoded"}
	}
	form, rerr := readForm(r)
	if rerr != nil {
		return nil, &grantError{status: rerr.status, code: "invalid_request", description: rerr.msg}
	}
	for k, v := range form {
		if len(v) > 1 {
			// RFC 6749 §3.2: parameters must not be repeated.
			return nil, &grantError{status: http.StatusBadRequest, code: "invalid_request", description: "parameter " + k + " is repeated"}
		}
	}
	return form, nil
}

// clientAuth authenticates the client by Basic or body credentials. No
// credentials at all means a public client, unless RequireClientAuth.
func (s *Server) clientAuth(r *http.Request, form url.Values) (string, *grantError) {
	if form.Get("client_assertion_type") != "" || form.Get("client_assertion") != "" {
		return s.assertedClient(r, form)
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-encoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", &grantError{status: http.StatusUnauthorized, code: "invalid_client", description: "malformed client credentials"}
		}
		if form.Get("client_secret") != "" {
			return "", &grantError{status: http.StatusBadRequest, code: "invalid_request", description: "use one client authentication method"}
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		if s.cfg.RequireClientAuth {
			return "", &grantError{status: http.StatusUnauthorized, code: "invalid_client", description: "client authentication required"}
		}
		return "", nil
	}
	want, ok := s.cfg.Clients[id]
	if _, keyed := s.cfg.ClientKeys[id]; keyed && !ok {
		return "", &grantError{status: http.StatusUnauthorized, code: "invalid_client", description: "this client authenticates with private_key_jwt"}
	}
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return "", &grantError{status: http.StatusUnauthorized, code: "invalid_client", description: "unknown client or wrong secret"}
	}
	return id, nil
}

// handleOAuthRevoke: POST /oauth/revoke (RFC 7009). Unknown and already
// revoked tokens get 200 too; token_type_hint is optional.
func (s *Server) handleOAuthRevoke(w http.ResponseWriter, r *http.Request) {
	form, gerr := s.oauthForm(r)
	if gerr != nil {
		gerr.write(w)
		return
	}
	if _, gerr := s.clientAuth(r, form); gerr != nil {
		gerr.write(w)
		return
	}
	token := form.Get("token")
	if token == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	hint := form.Get("token_type_hint")
	if hint != "access_token" && s.RevokeRefreshToken(token) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if claims, err := s.verifier.Verify(token); err == nil && claims.SessionID != "" {
		s.refresh.mu.Lock()
		if f, ok := s.refresh.families[claims.SessionID]; ok {
			s.refresh.revokeLocked(f)
			s.counters.revocations.Add(1)
		}
		s.refresh.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// handleJWKS: GET /.well-known/jwks.json.
func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	writeJSONCacheable(w, map[string]any{"keys": []map[string]string{publicJWK(s.key.priv.Public(), s.key.kid, s.key.alg)}})
}

// handleMetadata: GET /.well-known/oauth-authorization-server (RFC 8414).
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	base := s.baseURL(r)
	writeJSONCacheable(w, map[string]any{
		"issuer":                                           s.cfg.Issuer,
		"token_endpoint":                                   base + "/oauth/token",
		"revocation_endpoint":                              base + "/oauth/revoke",
		"authorization_endpoint":                           base + "/oauth/authorize",
		"device_authorization_endpoint":                    base + "/oauth/device_authorization",
		"code_challenge_methods_supported":                 []string{"S256"},
		"jwks_uri":                                         base + "/.well-known/jwks.json",
		"grant_types_supported":                            []string{"password", "refresh_token", "client_credentials", "authorization_code", deviceGrantType},
		"response_types_supported":                         []string{"code"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"revocation_endpoint_auth_methods_supported":       []string{"client_secret_basic", "client_secret_post", "none"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"},
		"dpop_signing_alg_values_supported":                DPoPAlgorithms,
	})
}
