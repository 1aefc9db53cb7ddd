package bff

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/jwk"
	"github.com/golang-jwt/jwt/v5"
)

// backchannelEvent is the event a logout token must carry (OpenID Connect
// Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutToken bounds what the back-channel endpoint reads.
const maxLogoutToken = 16 << 10

// logoutTokenAge is how old a logout token may be (its "iat"), and how long
// its "jti" is remembered against a replay.
const logoutTokenAge = 5 * time.Minute

// backchannelLogout: POST /bff/backchannel-logout — the provider says a
// user, or one of their sessions, logged out elsewhere. The logout token is
// verified (the provider's signature, iss, aud, iat, the event, sid or
// sub, no nonce, a jti never seen), and every matching session ends on
// every replica: a marker in the store that each replica reads when it
// looks at a session again (within a second).
func (b *BFF) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST /bff/backchannel-logout")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutToken)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a form of at most 16 KiB")
		return
	}
	claims, err := b.verifyLogoutToken(r.Context(), r.PostForm.Get("logout_token"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "logout_token: "+err.Error())
		return
	}
	now := b.cfg.Clock()
	for _, subject := range []string{"sub\x00" + claims.Subject, "sid\x00" + claims.SID} {
		if subject[4:] == "" {
			continue
		}
		rec := &authrefresh.Token{AccessToken: logoutRecord, IssuedAt: now}
		if err := b.table.store(logoutKey(subject)).Save(r.Context(), rec); err != nil {
			b.log.Error("authrefresh bff: keeping a back-channel logout", "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "the logout could not be kept; send it again")
			return
		}
	}
	b.table.forgetAll() // this replica looks in the store at the next use of each session
	w.WriteHeader(http.StatusOK)
}

// logoutRecord is the kind of record a back-channel logout is kept as: its
// IssuedAt is when it arrived; sessions that began before it are over.
const logoutRecord = "authrefresh-bff-logout"

// logoutKey names the store record of the logouts of a subject ("sub\x00…"
// or "sid\x00…" with the issuer's value).
func logoutKey(subject string) string {
	sum := sha256.Sum256([]byte("authrefresh bff logout\x00" + subject))
	return "logout:" + hex.EncodeToString(sum[:])
}

// logoutClaims are what a logout token says.
type logoutClaims struct {
	jwt.RegisteredClaims
	SID    string                     `json:"sid"`
	Events map[string]json.RawMessage `json:"events"`
	Nonce  *string                    `json:"nonce"`
}

// verifyLogoutToken checks a logout token (Back-Channel Logout 1.0 §2.6).
func (b *BFF) verifyLogoutToken(ctx context.Context, token string) (*logoutClaims, error) {
	if token == "" || len(token) > maxLogoutToken {
		return nil, errors.New("missing or too long")
	}
	claims := &logoutClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return b.keys.key(ctx, kid)
	},
		jwt.WithValidMethods([]string{"RS256", "PS256", "ES256", "ES384", "EdDSA"}),
		jwt.WithIssuer(b.cfg.Provider.Issuer),
		jwt.WithAudience(b.client.ClientID),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(b.cfg.Clock),
		jwt.WithLeeway(30*time.Second),
	)
	if err != nil {
		return nil, errors.New("not signed by the provider for this client, or out of date")
	}
	now := b.cfg.Clock()
	switch {
	case claims.IssuedAt == nil || now.Sub(claims.IssuedAt.Time) > logoutTokenAge:
		return nil, errors.New("no iat, or older than five minutes")
	case claims.Events == nil || claims.Events[backchannelEvent] == nil:
		return nil, errors.New("no back-channel logout event")
	case claims.Subject == "" && claims.SID == "":
		return nil, errors.New("names neither sub nor sid")
	case claims.Nonce != nil:
		return nil, errors.New("carries a nonce: it is an ID token, not a logout token")
	case claims.ID == "":
		return nil, errors.New("no jti")
	case !b.seenLogouts.first(claims.ID, now):
		return nil, errors.New("already received (jti)")
	}
	return claims, nil
}

// logoutsEnded reports whether a session of the ID token's sub and sid,
// begun at created, was ended by a back-channel logout since.
func (t *sessionTable) logoutsEnded(ctx context.Context, sub, sid string, created time.Time) bool {
	for _, subject := range []string{"sub\x00" + sub, "sid\x00" + sid} {
		if subject[4:] == "" {
			continue
		}
		rec, err := t.store(logoutKey(subject)).Load(ctx)
		if err == nil && rec != nil && rec.AccessToken == logoutRecord && !rec.IssuedAt.Before(created) {
			return true
		}
	}
	return false
}

// jtiCache remembers the logout tokens received lately.
type jtiCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// first reports whether jti is new, and remembers it.
func (c *jtiCache) first(jti string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if len(c.seen) > 10_000 {
		for k, at := range c.seen {
			if now.Sub(at) > 2*logoutTokenAge {
				delete(c.seen, k)
			}
		}
	}
	if _, ok := c.seen[jti]; ok {
		return false
	}
	c.seen[jti] = now
	return true
}

// jwks is the provider's signing keys, fetched from its jwks_uri when a
// kid is not known yet (at most once a minute).
type jwks struct {
	uri     string
	client  *http.Client
	mu      sync.Mutex
	keys    map[string]crypto.PublicKey
	fetched time.Time
}

func (k *jwks) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if k.uri == "" {
		return nil, errors.New("the provider names no jwks_uri")
	}
	if time.Since(k.fetched) < time.Minute && k.keys != nil {
		return nil, errors.New("unknown key id")
	}
	keys, err := fetchJWKS(ctx, k.client, k.uri)
	k.fetched = time.Now()
	if err != nil {
		return nil, err
	}
	k.keys = keys
	if key, ok := keys[kid]; ok {
		return key, nil
	}
	return nil, errors.New("unknown key id")
}

// fetchJWKS reads a JWK Set's public signing keys by kid.
func fetchJWKS(ctx context.Context, hc *http.Client, uri string) (map[string]crypto.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the provider's keys: %w", err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Kid, Crv, X, Y, N, E, Use string }
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set) != nil {
		return nil, fmt.Errorf("the provider's keys (%s) answered %d, not a JWK Set", uri, resp.StatusCode)
	}
	keys := map[string]crypto.PublicKey{}
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		if key, err := (jwk.Key{Kty: j.Kty, Crv: j.Crv, X: j.X, Y: j.Y, N: j.N, E: j.E}).Public(); err == nil {
			keys[j.Kid] = key
		}
	}
	return keys, nil
}
