package bff

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh/oauth"
)

// session is what the BFF knows of one browser's login beside its tokens
// (which live in the keyed.Manager's stores).
type session struct {
	claims  map[string]any // the ID token's, for /bff/user
	idToken string         // the id_token_hint of an RP-initiated logout
	created time.Time      // the login: MaxAge counts from it
	seen    time.Time      // the last use: IdleTimeout counts from it
}

// sessionTable holds the live sessions by store key.
type sessionTable struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessionTable() *sessionTable { return &sessionTable{m: map[string]*session{}} }

func (t *sessionTable) put(key string, s *session) {
	t.mu.Lock()
	t.m[key] = s
	t.mu.Unlock()
}

// touch returns key's session, used now, unless it is idle or too old,
// which ends it.
func (t *sessionTable) touch(key string, now time.Time, idle, maxAge time.Duration) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[key]
	if s == nil {
		return nil
	}
	if now.Sub(s.seen) > idle || now.Sub(s.created) > maxAge {
		delete(t.m, key)
		return nil
	}
	s.seen = now
	c := *s
	return &c
}

// remove forgets key's session and returns it (nil if there was none).
func (t *sessionTable) remove(key string) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[key]
	delete(t.m, key)
	return s
}

// loginTTL is how long a login may take at the provider.
const loginTTL = 10 * time.Minute

// maxLogins bounds the logins in flight: anyone may start one.
const maxLogins = 10_000

// pendingLogin is a login in flight.
type pendingLogin struct {
	req      *oauth.AuthorizationRequest
	returnTo string
	started  time.Time
}

// loginTable holds the logins in flight by state.
type loginTable struct {
	mu sync.Mutex
	m  map[string]*pendingLogin
}

func newLoginTable() *loginTable { return &loginTable{m: map[string]*pendingLogin{}} }

// add keeps req; false when too many logins are in flight.
func (t *loginTable) add(req *oauth.AuthorizationRequest, returnTo string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxLogins {
		for state, p := range t.m {
			if now.Sub(p.started) > loginTTL {
				delete(t.m, state)
			}
		}
		if len(t.m) >= maxLogins {
			return false
		}
	}
	t.m[req.State] = &pendingLogin{req: req, returnTo: returnTo, started: now}
	return true
}

// take returns state's login and forgets it: a state is used once.
func (t *loginTable) take(state string, now time.Time) (*pendingLogin, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[state]
	delete(t.m, state)
	if !ok || now.Sub(p.started) > loginTTL {
		return nil, false
	}
	return p, true
}

// idTokenClaims are the ID token's claims, for display: it came straight
// from the token endpoint, and Complete checked its nonce, audience and
// issuer.
func idTokenClaims(idToken string) map[string]any {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return map[string]any{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	var claims map[string]any
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		return map[string]any{}
	}
	for _, k := range []string{"nonce", "at_hash", "c_hash"} {
		delete(claims, k)
	}
	return claims
}
