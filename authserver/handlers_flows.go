package authserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The user-facing flows: the authorization code grant with PKCE
// (/oauth/authorize) and the device authorization grant (RFC 8628,
// /oauth/device_authorization). Being a test double, the server asks no
// one: the authorization endpoint approves Config.AutoApproveUser, and a
// device code is approved or denied by ApproveDevice (or the control API).

const (
	codeTTL         = time.Minute
	deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"
)

// authCode is one issued authorization code.
type authCode struct {
	clientID, redirectURI, challenge, user, scope, nonce string
	jkt                                                  string // dpop_jkt: the DPoP key that must exchange it
	expires                                              time.Time
}

// deviceGrant is one device authorization, pending until approved or denied.
type deviceGrant struct {
	clientID, scope, userCode string
	expires, nextPoll         time.Time
	interval                  time.Duration
	user                      string // set when approved
	denied                    bool
}

// flowStore holds codes and device grants until used or expired. Anyone
// can ask for them, so what it holds is bounded: each field in length
// (maxFlowField…), the entries in number (Config.MaxPendingFlows), and in
// time: expired entries are dropped by a sweep when one is added after the
// last sweep's interval, and by a timer while any is held, not only when
// used.
type flowStore struct {
	mu         sync.Mutex
	codes      map[tokenHash]*authCode
	devices    map[tokenHash]*deviceGrant
	byUserCode map[string]*deviceGrant
	sweepAt    time.Time // when an addition next sweeps
	timer      bool      // a timed sweep is scheduled
}

func newFlowStore() *flowStore {
	return &flowStore{codes: map[tokenHash]*authCode{}, devices: map[tokenHash]*deviceGrant{}, byUserCode: map[string]*deviceGrant{}}
}

// The longest value kept of each field of a pending flow. A code_challenge
// for S256 is 43 characters (RFC 7636 §4.2); nonce, scope and redirect URI
// have no limit in the RFCs: these are well above real ones.
const (
	maxNonce       = 512
	maxScope       = 1024
	maxRedirectURI = 2048
)

// errTooManyFlows is the answer when MaxPendingFlows are pending.
const errTooManyFlows = "too many pending authorizations; try again shortly"

// sweepLocked drops expired codes and device grants; s.flows.mu is held.
func (s *Server) sweepLocked(now time.Time) {
	f := s.flows
	for h, c := range f.codes {
		if !now.Before(c.expires) {
			delete(f.codes, h)
		}
	}
	for h, g := range f.devices {
		if !now.Before(g.expires) {
			delete(f.devices, h)
			delete(f.byUserCode, g.userCode)
		}
	}
	f.sweepAt = now.Add(codeTTL / 2)
}

// admitLocked makes room for one more pending flow, or reports that there
// is none; s.flows.mu is held.
func (s *Server) admitLocked(now time.Time) bool {
	f := s.flows
	if !now.Before(f.sweepAt) || len(f.codes)+len(f.devices) >= s.cfg.MaxPendingFlows {
		s.sweepLocked(now)
	}
	if len(f.codes)+len(f.devices) >= s.cfg.MaxPendingFlows {
		return false
	}
	if !f.timer {
		f.timer = true
		time.AfterFunc(codeTTL, s.timedSweep)
	}
	return true
}

// timedSweep drops expired flows when no request comes to do it, and runs
// again while any flow is pending.
func (s *Server) timedSweep() {
	f := s.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	s.sweepLocked(s.now())
	f.timer = len(f.codes)+len(f.devices) > 0
	if f.timer {
		time.AfterFunc(codeTTL, s.timedSweep)
	}
}

// PendingFlows is the number of authorization codes and device grants
// held: issued and neither used nor swept after their expiry.
func (s *Server) PendingFlows() int {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	return len(s.flows.codes) + len(s.flows.devices)
}

// baseURL is the server's own base URL: the issuer when it is a URL, else
// the request's host.
func (s *Server) baseURL(r *http.Request) string {
	base := s.cfg.Issuer
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return strings.TrimRight(base, "/")
}

// loopbackRedirect accepts only the redirect URIs of native apps (RFC 8252
// §7.3): http on a loopback IP or localhost, any port, no fragment.
func loopbackRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Fragment != "" || u.User != nil {
		return false
	}
	if h := u.Hostname(); h == "localhost" {
		return true
	} else if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	return false
}

// handleAuthorize: GET /oauth/authorize, the authorization endpoint. Errors
// before the redirect URI is known good are a 400 page; later ones go back
// to the client as RFC 6749 §4.1.2.1 redirect parameters.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if _, known := s.cfg.Clients[clientID]; !known {
		writeError(w, http.StatusBadRequest, "invalid_client", "unknown client_id")
		return
	}
	if len(redirectURI) > maxRedirectURI || !loopbackRedirect(redirectURI) {
		writeError(w, http.StatusBadRequest, "invalid_request", "redirect_uri must be http://127.0.0.1:PORT/... (a loopback redirect)")
		return
	}
	back := func(params url.Values) {
		if st := q.Get("state"); st != "" {
			params.Set("state", st)
		}
		params.Set("iss", s.baseURL(r)) // RFC 9207
		u, _ := url.Parse(redirectURI)
		merged := u.Query()
		for k, v := range params {
			merged[k] = v
		}
		u.RawQuery = merged.Encode()
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	fail := func(code, desc string) { back(url.Values{"error": {code}, "error_description": {desc}}) }
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
	case len(q.Get("code_challenge")) != 43:
		fail("invalid_request", "an S256 code_challenge is 43 characters (RFC 7636 §4.2)")
	case len(q.Get("dpop_jkt")) > 43:
		fail("invalid_request", "dpop_jkt is a JWK SHA-256 thumbprint: 43 characters")
	case len(q.Get("nonce")) > maxNonce || len(q.Get("scope")) > maxScope:
		fail("invalid_request", fmt.Sprintf("nonce is limited to %d bytes and scope to %d", maxNonce, maxScope))
	case s.cfg.AutoApproveUser == "":
		fail("access_denied", "this server approves no one (AutoApproveUser is not set)")
	default:
		code, now := newOpaqueToken(), s.now()
		s.flows.mu.Lock()
		admitted := s.admitLocked(now)
		if admitted {
			s.flows.codes[hashToken(code)] = &authCode{clientID: clientID, redirectURI: redirectURI, challenge: q.Get("code_challenge"),
				user: s.cfg.AutoApproveUser, scope: q.Get("scope"), nonce: q.Get("nonce"), jkt: q.Get("dpop_jkt"), expires: now.Add(codeTTL)}
		}
		s.flows.mu.Unlock()
		if !admitted {
			fail("temporarily_unavailable", errTooManyFlows)
			return
		}
		s.counters.authorizations.Add(1)
		back(url.Values{"code": {code}})
	}
}

// codeGrant exchanges an authorization code (one use) for a new family.
func (s *Server) codeGrant(form url.Values, clientID, jkt string) (*tokenResponse, *grantError) {
	code := form.Get("code")
	s.flows.mu.Lock()
	c := s.flows.codes[hashToken(code)]
	delete(s.flows.codes, hashToken(code))
	s.flows.mu.Unlock()
	now := s.now()
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	switch {
	case c == nil || !now.Before(c.expires):
		return nil, invalidGrant("unknown, used or expired authorization code")
	case c.clientID != clientID:
		return nil, invalidGrant("the code was issued to another client")
	case form.Get("redirect_uri") != c.redirectURI:
		return nil, invalidGrant("redirect_uri differs from the authorization request's")
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.challenge)) != 1:
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	case c.jkt != "" && c.jkt != jkt:
		s.counters.dpopKeyMismatches.Add(1)
		return nil, invalidGrant("the code is bound to another DPoP key (dpop_jkt)")
	}
	return s.userTokens(c.user, c.clientID, c.scope, c.nonce, jkt, now)
}

// userTokens opens a family for a user a flow approved, with an ID token
// when the scope asks for openid.
func (s *Server) userTokens(user, clientID, scope, nonce, jkt string, now time.Time) (*tokenResponse, *grantError) {
	answer, gerr := s.openFamily(user, clientID, scope, jkt, now)
	if gerr != nil || !strings.Contains(" "+scope+" ", " openid ") {
		return answer, gerr
	}
	claims := jwt.MapClaims{"iss": s.cfg.Issuer, "sub": user, "aud": clientID, "iat": now.Unix(), "exp": now.Add(s.cfg.AccessTTL).Unix(), "sid": answer.sid}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	t := jwt.NewWithClaims(s.key.method, claims)
	t.Header["kid"] = s.key.kid
	idToken, err := t.SignedString(s.key.priv)
	if err != nil {
		return nil, &grantError{status: http.StatusInternalServerError, code: "server_error", description: "cannot sign the ID token"}
	}
	answer.IDToken = idToken
	return answer, nil
}

// userCodeAlphabet has no vowels and no look-alikes (RFC 8628 §6.1).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

func newUserCode() string {
	raw := newOpaqueToken()
	var b strings.Builder
	for i := 0; i < 8; i++ {
		if i == 4 {
			b.WriteByte('-')
		}
		b.WriteByte(userCodeAlphabet[int(raw[i])%len(userCodeAlphabet)])
	}
	return b.String()
}

// handleDeviceAuthorization: POST /oauth/device_authorization (RFC 8628 §3.1).
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	form, gerr := s.oauthForm(r)
	var clientID string
	if gerr == nil {
		clientID, gerr = s.clientAuth(r, form)
	}
	if gerr == nil && clientID == "" {
		gerr = &grantError{status: http.StatusBadRequest, code: "invalid_request", description: "client_id is required"}
	}
	if gerr != nil {
		gerr.write(w)
		return
	}
	if len(form.Get("scope")) > maxScope {
		(&grantError{status: http.StatusBadRequest, code: "invalid_scope", description: fmt.Sprintf("scope is limited to %d bytes", maxScope)}).write(w)
		return
	}
	device, now := newOpaqueToken(), s.now()
	g := &deviceGrant{clientID: clientID, scope: form.Get("scope"), expires: now.Add(s.cfg.DeviceCodeTTL), interval: s.cfg.DeviceInterval}
	g.nextPoll = now.Add(g.interval)
	s.flows.mu.Lock()
	if !s.admitLocked(now) {
		s.flows.mu.Unlock()
		w.Header().Set("Retry-After", "10")
		(&grantError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", description: errTooManyFlows}).write(w)
		return
	}
	for g.userCode == "" || s.flows.byUserCode[g.userCode] != nil {
		g.userCode = newUserCode()
	}
	s.flows.devices[hashToken(device)] = g
	s.flows.byUserCode[g.userCode] = g
	s.flows.mu.Unlock()
	verify := s.baseURL(r) + "/device"
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": device, "user_code": g.userCode,
		"verification_uri": verify, "verification_uri_complete": verify + "?user_code=" + url.QueryEscape(g.userCode),
		"expires_in": int64(s.cfg.DeviceCodeTTL / time.Second), "interval": int64(g.interval / time.Second),
	})
}

// pollDevice answers a poll of the device_code grant (RFC 8628 §3.5).
func (s *Server) pollDevice(form url.Values, clientID, jkt string) (*tokenResponse, *grantError) {
	now := s.now()
	h := hashToken(form.Get("device_code"))
	s.flows.mu.Lock()
	g := s.flows.devices[h]
	pending := func(code, desc string) *grantError {
		return &grantError{status: http.StatusBadRequest, code: code, description: desc}
	}
	var gerr *grantError
	switch {
	case g == nil:
		gerr = invalidGrant("unknown or used device_code")
	case g.clientID != clientID:
		gerr = invalidGrant("the device code was issued to another client")
	case !now.Before(g.expires):
		gerr = pending("expired_token", "the device code expired; start again")
	case g.denied:
		gerr = pending("access_denied", "the user denied the request")
	case now.Before(g.nextPoll):
		g.interval += 5 * time.Second
		g.nextPoll = now.Add(g.interval)
		s.counters.deviceSlowDowns.Add(1)
		gerr = pending("slow_down", fmt.Sprintf("polling too fast; wait %d s between polls", g.interval/time.Second))
	case g.user == "":
		g.nextPoll = now.Add(g.interval)
		gerr = pending("authorization_pending", "the user has not approved yet")
	}
	if g != nil && (gerr == nil || gerr.code == "expired_token" || gerr.code == "access_denied") {
		delete(s.flows.devices, h)
		delete(s.flows.byUserCode, g.userCode)
	}
	s.flows.mu.Unlock()
	s.counters.devicePolls.Add(1)
	if gerr != nil {
		return nil, gerr
	}
	return s.userTokens(g.user, g.clientID, g.scope, "", jkt, now)
}

// ApproveDevice approves (or, with deny, refuses) the pending device
// authorization of userCode for user, as that user would on the
// verification page. It reports whether the code was pending.
func (s *Server) ApproveDevice(userCode, user string, deny bool) bool {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	g := s.flows.byUserCode[strings.ToUpper(strings.TrimSpace(userCode))]
	if g == nil || g.user != "" || g.denied || !s.now().Before(g.expires) {
		return false
	}
	if deny {
		g.denied = true
	} else {
		g.user = user
	}
	return true
}

// handleDevicePage: GET /device, the verification URI. There is no one to
// ask here: it says how a test approves the code.
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "authserver reference server: device code %q is approved by the test harness\n(Server.ApproveDevice, or POST /_control/device {\"user_code\", \"user\", \"deny\"} when the control API is on).\n", r.URL.Query().Get("user_code"))
}

// backchannelLogoutEvent is the "events" member of a logout token (OpenID
// Connect Back-Channel Logout 1.0 §2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken signs a logout token for clientID (OpenID Connect
// Back-Channel Logout 1.0 §2.4) naming the user sub and the session sid
// (the "sid" of the ID tokens of a login; either may be empty, not both),
// as a provider sends to a client's back-channel logout URI when the user
// logs out elsewhere. Tests deliver it.
func (s *Server) LogoutToken(clientID, sub, sid string) (string, error) {
	if sub == "" && sid == "" {
		return "", errors.New("authserver: a logout token names a sub, a sid, or both")
	}
	now := s.now()
	claims := jwt.MapClaims{"iss": s.cfg.Issuer, "aud": clientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": newOpaqueToken()[:22], "events": map[string]any{backchannelLogoutEvent: map[string]any{}}}
	if sub != "" {
		claims["sub"] = sub
	}
	if sid != "" {
		claims["sid"] = sid
	}
	t := jwt.NewWithClaims(s.key.method, claims)
	t.Header["kid"] = s.key.kid
	t.Header["typ"] = "logout+jwt"
	return t.SignedString(s.key.priv)
}
