package authserver

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// tokenResponse is the RFC 6749 §5.1 answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`

	sid string // the family: the OpenID session of an ID token ("sid")
}

// camelResponse adds the camelCase spellings some JavaScript clients read.
type camelResponse struct {
	tokenResponse
	AccessTokenCamel  string `json:"accessToken"`
	RefreshTokenCamel string `json:"refreshToken,omitempty"`
}

func withCamelCase(t *tokenResponse) camelResponse {
	return camelResponse{tokenResponse: *t, AccessTokenCamel: t.AccessToken, RefreshTokenCamel: t.RefreshToken}
}

// grantError is a refused grant, rendered as RFC 6749 §5.2.
type grantError struct {
	status      int
	code        string
	description string
	retryAfter  time.Duration
}

func (e *grantError) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", fmtSeconds(e.retryAfter))
	}
	if e.code == "invalid_client" && e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="authrefresh"`)
	}
	writeError(w, e.status, e.code, e.description)
}

func invalidGrant(desc string) *grantError {
	return &grantError{status: http.StatusBadRequest, code: "invalid_grant", description: desc}
}

// passwordGrant checks credentials (rate-limited) and opens a new family.
func (s *Server) passwordGrant(r *http.Request, user, password, clientID, scope, jkt string) (*tokenResponse, *grantError) {
	ip := clientIP(r)
	now := s.now()
	wait, settle := s.limiter.reserve(user, ip, now)
	if wait > 0 {
		s.counters.loginsThrottled.Add(1)
		return nil, &grantError{status: http.StatusTooManyRequests, code: "slow_down", description: "too many failed logins; try again later", retryAfter: wait}
	}
	hash, known := s.users[user]
	if !known {
		hash = s.dummy // same work for unknown users: no user enumeration by timing
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || !known || user == "" {
		settle(false)
		s.counters.loginFailures.Add(1)
		return nil, invalidGrant(errBadCredentials.Error())
	}
	settle(true)
	s.counters.logins.Add(1)
	return s.openFamily(user, clientID, scope, jkt, now)
}

// openFamily issues the first refresh token of a new family. With jkt
// (the thumbprint of the DPoP key the request proved), the access token
// is bound to the key, and so is the refresh token of a public client
// (RFC 9449 §5): a confidential client's is bound to its authentication.
func (s *Server) openFamily(user, clientID, scope, jkt string, now time.Time) (*tokenResponse, *grantError) {
	refresh := newOpaqueToken()
	f := &family{id: newOpaqueToken()[:22], user: user, clientID: clientID, scope: scope, expires: now.Add(s.cfg.RefreshTTL)}
	if s.publicClient(clientID) {
		f.jkt = jkt
	}
	s.refresh.mu.Lock()
	s.refresh.families[f.id] = f
	s.refresh.addLocked(f, hashToken(refresh))
	s.refresh.mu.Unlock()
	access, err := s.issueAccess(user, clientID, scope, f.id, jkt, now)
	if err != nil {
		return nil, &grantError{status: http.StatusInternalServerError, code: "server_error", description: "cannot sign the token"}
	}
	return &tokenResponse{AccessToken: access, TokenType: tokenType(jkt), ExpiresIn: int64(s.cfg.AccessTTL.Round(time.Second) / time.Second), RefreshToken: refresh, Scope: scope, sid: f.id}, nil
}

// refreshGrant rotates a refresh token atomically: under one lock, exactly one
// presenter of a live token gets its successor; any other presenter of a used
// token revokes the family (unless it is a grace-period replay).
func (s *Server) refreshGrant(ctx context.Context, token, clientID, scope, jkt string, checkClient bool) (*tokenResponse, *grantError) {
	if err := s.faults.beforeRefresh(ctx, s.counters); err != nil {
		return nil, err
	}
	if token == "" {
		return nil, &grantError{status: http.StatusBadRequest, code: "invalid_request", description: "refresh_token is required"}
	}
	now := s.now()
	h := hashToken(token)
	st := s.refresh
	st.mu.Lock()
	defer st.mu.Unlock()
	f, ok := st.byHash[h]
	switch {
	case !ok:
		s.counters.refreshFailures.Add(1)
		return nil, invalidGrant("unknown refresh token")
	case f.revoked:
		s.counters.refreshFailures.Add(1)
		return nil, invalidGrant("refresh token revoked")
	case !now.Before(f.expires):
		s.counters.refreshFailures.Add(1)
		return nil, invalidGrant("refresh token expired; log in again")
	case checkClient && f.clientID != "" && f.clientID != clientID:
		s.counters.refreshFailures.Add(1)
		return nil, invalidGrant("refresh token was issued to another client")
	case f.jkt != "" && f.jkt != jkt:
		// Refused without rotating: the token stays live for its key.
		s.counters.dpopKeyMismatches.Add(1)
		s.counters.refreshFailures.Add(1)
		return nil, invalidGrant("the refresh token is bound to another DPoP key")
	case scope != "" && !subsetScope(scope, f.scope):
		return nil, &grantError{status: http.StatusBadRequest, code: "invalid_scope", description: "scope exceeds the original grant"}
	}
	if h != f.current {
		if h == f.prev && s.cfg.GracePeriod > 0 && now.Sub(f.prevUsedAt) < s.cfg.GracePeriod && f.lastAnswer != nil {
			s.counters.graceReplays.Add(1)
			answer := *f.lastAnswer
			return &answer, nil
		}
		st.revokeLocked(f)
		s.counters.reuseDetections.Add(1)
		s.counters.refreshFailures.Add(1)
		s.log.Warn("authserver: refresh token reuse detected; family revoked", "user", f.user)
		return nil, invalidGrant("refresh token already used; session revoked")
	}
	if scope == "" {
		scope = f.scope
	}
	access, err := s.issueAccess(f.user, f.clientID, scope, f.id, jkt, now)
	if err != nil {
		return nil, &grantError{status: http.StatusInternalServerError, code: "server_error", description: "cannot sign the token"}
	}
	answer := &tokenResponse{AccessToken: access, TokenType: tokenType(jkt), ExpiresIn: int64(s.cfg.AccessTTL.Round(time.Second) / time.Second), Scope: scope}
	if s.cfg.DisableRotation {
		answer.RefreshToken = token
	} else {
		next := newOpaqueToken()
		f.prev, f.prevUsedAt = h, now
		st.addLocked(f, hashToken(next))
		answer.RefreshToken = next
		if s.cfg.GracePeriod > 0 {
			cached := *answer
			f.lastAnswer = &cached
		}
	}
	s.counters.refreshes.Add(1)
	return answer, nil
}

func subsetScope(requested, granted string) bool {
	have := map[string]bool{}
	for _, g := range strings.Fields(granted) {
		have[g] = true
	}
	for _, r := range strings.Fields(requested) {
		if !have[r] {
			return false
		}
	}
	return true
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func fmtSeconds(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	return itoa(secs)
}

// tokenType is the token_type of an access token bound to jkt ("" for a
// bearer token).
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

// publicClient reports a client without a secret or key: its refresh
// tokens are bound to its DPoP key.
func (s *Server) publicClient(clientID string) bool {
	_, keyed := s.cfg.ClientKeys[clientID]
	return s.cfg.Clients[clientID] == "" && !keyed
}
