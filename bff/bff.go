package bff

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
	"github.com/authrefresh/authrefresh/internal/upstream"
	"github.com/authrefresh/authrefresh/keyed"
	"github.com/authrefresh/authrefresh/oauth"
)

// Config describes a backend-for-frontend: the provider and client it logs
// users in with, where it is, and the APIs it calls for them.
type Config struct {
	// Provider is the OpenID provider's metadata (oauth.Discover):
	// its authorization and token endpoints are required; its revocation
	// and end-session endpoints are used when it has them.
	Provider *oauth.ProviderMetadata
	// Client is the OAuth2 client the BFF logs users in as: ClientID,
	// a ClientSecret or Key (a confidential client, the usual BFF), Scopes
	// ("openid" is added when missing). TokenURL and RevocationURL are
	// taken from Provider. Required.
	Client oauth.Config
	// URL is the BFF's own origin as the browser sees it, such as
	// "https://app.example.com": the callback is URL + "/bff/callback".
	// Plain http is accepted only on a loopback address, for development;
	// the session cookie then cannot be Secure, and New logs so.
	URL string
	// APIs are the routes that reach an API with the user's token.
	APIs []API
	// Store returns the store of one session's tokens, and of the session
	// itself (who logged in, when), each named by an opaque key:
	// filestore.KeyFileName(key) under a directory, a redisstore session;
	// sealed when the store has a keyring. Replicas of the BFF given the
	// same stores share the sessions (one refresh per user between them,
	// a logout on one seen by all within a second), and a restarted BFF
	// keeps them. nil keeps them in this process's memory.
	Store func(key string) authrefresh.Store
	// IdleTimeout ends a session unused for this long; 0 means 30 minutes.
	IdleTimeout time.Duration
	// MaxAge ends a session this long after its login, used or not; 0
	// means 12 hours.
	MaxAge time.Duration
	// CSRFHeader is the header every API and logout request must carry
	// (any value): a cross-site page cannot set it without a preflight the
	// BFF never grants. "" means "X-CSRF".
	CSRFHeader string
	// Static, if set, serves everything else: the app's files.
	Static http.Handler
	// Base sends the API requests; nil means a transport of each API's own
	// that keeps its connections alive and never hands one request's
	// answer to another, whatever the API sends.
	Base http.RoundTripper
	// Logger receives what goes wrong; nil means slog.Default(). Tokens
	// and cookies are never logged.
	Logger *slog.Logger
	// Clock is the sessions' clock; nil means time.Now.
	Clock func() time.Time
}

// API is one route to an API: requests under Prefix go to Upstream, the
// prefix replaced by the upstream's path, with the user's access token.
type API struct {
	Prefix   string // "/api/"
	Upstream string // "https://api.example.com/v1/"
}

// BFF is the http.Handler of a backend-for-frontend. See the package
// documentation for its endpoints.
type BFF struct {
	cfg         Config
	client      *oauth.Config
	base        *url.URL
	secure      bool   // the cookies are Secure (__Host-)
	csrfHeader  string // CSRFHeader's canonical name
	sessions    *keyed.Manager
	table       *sessionTable
	logins      *loginSealer
	apis        []route
	csrf        *http.CrossOriginProtection
	keys        *jwks    // the provider's, for logout tokens
	seenLogouts jtiCache // the logout tokens received lately
	log         *slog.Logger
}

type route struct {
	prefix   string
	upstream *url.URL
	forward  *upstream.Forwarder
}

// The cookies: the session's and the one that binds a login in flight to
// the browser that started it. With __Host- the browser accepts them only
// Secure, for this host, on Path=/.
const (
	sessionCookie    = "__Host-bff"
	loginCookie      = "__Host-bff-login"
	devSessionCookie = "bff"
	devLoginCookie   = "bff-login"
)

// New checks cfg and returns the BFF.
func New(cfg Config) (*BFF, error) {
	if cfg.Provider == nil || cfg.Provider.AuthorizationEndpoint == "" || cfg.Provider.TokenEndpoint == "" {
		return nil, errors.New("authrefresh: bff.Config.Provider needs its authorization and token endpoints (oauth.Discover)")
	}
	if cfg.Client.ClientID == "" {
		return nil, errors.New("authrefresh: bff.Config.Client.ClientID is required")
	}
	base, err := url.Parse(cfg.URL)
	if err != nil || base.Host == "" || base.Path != "" && base.Path != "/" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("authrefresh: bff.Config.URL %q is not an origin such as https://app.example.com", cfg.URL)
	}
	base.Path = ""
	secure := base.Scheme == "https"
	if !secure && !loopback(base.Hostname()) {
		return nil, fmt.Errorf("authrefresh: bff.Config.URL %q: plain http is for development on a loopback address only; use https", cfg.URL)
	}
	b := &BFF{cfg: cfg, base: base, secure: secure, log: cmp.Or(cfg.Logger, slog.Default())}
	if !secure {
		b.log.Warn("authrefresh bff: plain http on loopback: the session cookie is not Secure; for development only", "url", base.String())
	}
	c := cfg.Client
	c.TokenURL, c.RevocationURL = cfg.Provider.TokenEndpoint, cfg.Provider.RevocationEndpoint
	if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	b.client = &c
	b.cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, 30*time.Minute)
	b.cfg.MaxAge = cmp.Or(cfg.MaxAge, 12*time.Hour)
	b.cfg.CSRFHeader = cmp.Or(cfg.CSRFHeader, "X-CSRF")
	b.csrfHeader = http.CanonicalHeaderKey(b.cfg.CSRFHeader)
	if b.cfg.Clock == nil {
		b.cfg.Clock = time.Now
	}
	store := cfg.Store
	if store == nil {
		var memory sync.Map // key → *authrefresh.MemoryStore: the same store after an eviction
		store = func(key string) authrefresh.Store {
			s, _ := memory.LoadOrStore(key, authrefresh.NewMemoryStore(nil))
			return s.(authrefresh.Store)
		}
	}
	var routes upstreams
	send := cfg.Base
	if send == nil {
		routes = upstreams{}
		send = routes
	}
	b.sessions = &keyed.Manager{
		New: func(key string) (keyed.Spec, error) {
			return keyed.Spec{Store: store(key), Refresher: b.client, Options: authrefresh.Options{Clock: b.cfg.Clock}}, nil
		},
		MaxIdle: b.cfg.IdleTimeout, Clock: b.cfg.Clock, Base: send,
	}
	b.table = newSessionTable(func(key string) authrefresh.Store { return store("session:" + key) })
	b.logins = &loginSealer{store: store(loginKeyName), clock: b.cfg.Clock}
	b.csrf = http.NewCrossOriginProtection()
	b.keys = &jwks{uri: cfg.Provider.JWKSURI, client: &http.Client{Timeout: 10 * time.Second}}
	for _, a := range cfg.APIs {
		up, err := url.Parse(a.Upstream)
		if err != nil || up.Host == "" || (up.Scheme != "https" && up.Scheme != "http") || !strings.HasPrefix(a.Prefix, "/") || !strings.HasSuffix(a.Prefix, "/") {
			return nil, fmt.Errorf("authrefresh: bff API %q → %q: want a prefix like /api/ and an http(s) upstream", a.Prefix, a.Upstream)
		}
		origin := up.Scheme + "://" + up.Host
		b.sessions.Origins = append(b.sessions.Origins, origin)
		if at := (apiOrigin{up.Scheme, up.Host}); routes != nil && routes[at] == nil {
			routes[at] = upstream.New(up, maxUpstreamConns)
		}
		b.apis = append(b.apis, route{prefix: a.Prefix, upstream: up, forward: b.forwarder(up, a.Prefix)})
	}
	return b, nil
}

// ServeHTTP implements http.Handler.
func (b *BFF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/bff/login":
		b.login(w, r)
	case p == "/bff/callback":
		b.callback(w, r)
	case p == "/bff/user":
		b.user(w, r)
	case p == "/bff/logout":
		b.logout(w, r)
	case p == "/bff/backchannel-logout":
		b.backchannelLogout(w, r)
	case strings.HasPrefix(p, "/bff/"):
		writeError(w, http.StatusNotFound, "not_found", "the BFF answers /bff/login, /bff/callback, /bff/user, /bff/logout and /bff/backchannel-logout")
	default:
		for _, a := range b.apis {
			if strings.HasPrefix(p, a.prefix) {
				b.api(w, r, a)
				return
			}
		}
		if b.cfg.Static != nil {
			b.cfg.Static.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

// callbackURL is the redirect URI registered for the BFF's client.
func (b *BFF) callbackURL() string { return b.base.String() + "/bff/callback" }

func (b *BFF) cookieName(session bool) string {
	switch {
	case session && b.secure:
		return sessionCookie
	case session:
		return devSessionCookie
	case b.secure:
		return loginCookie
	}
	return devLoginCookie
}

func (b *BFF) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// login: GET /bff/login?returnUrl=/path — starts a login at the provider.
func (b *BFF) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET /bff/login")
		return
	}
	ret, ok := localPath(r.URL.Query().Get("returnUrl"))
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_return_url", "returnUrl must be a path on this site, such as /orders")
		return
	}
	req := oauth.NewAuthorizationRequest(b.client, b.cfg.Provider.AuthorizationEndpoint, b.callbackURL())
	// The login is bound to this browser, and travels with it: the
	// callback needs its cookie, whichever replica it reaches.
	sealed, err := b.logins.seal(r.Context(), &pendingLogin{State: req.State, Nonce: req.Nonce, Verifier: req.Verifier, ReturnTo: ret, Started: b.cfg.Clock().Unix()})
	if err != nil {
		b.log.Error("authrefresh bff: the login cookies' key", "err", err)
		writeError(w, http.StatusServiceUnavailable, "login_unavailable", "a login cannot start now; try again")
		return
	}
	b.setCookie(w, b.cookieName(false), sealed, loginTTL)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, req.URL(), http.StatusFound)
}

// callback: GET /bff/callback — the provider's redirect: the code is
// exchanged, a new session begins (a new id: no fixation), and the browser
// goes back to where it started.
func (b *BFF) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bound, err := r.Cookie(b.cookieName(false))
	if err != nil || bound.Value == "" {
		writeError(w, http.StatusBadRequest, "login_mismatch", "this login was not started in this browser; start again")
		return
	}
	pending, err := b.logins.open(r.Context(), bound.Value)
	if err != nil && !errors.Is(err, errLoginCookie) {
		b.log.Error("authrefresh bff: the login cookies' key", "err", err)
		writeError(w, http.StatusServiceUnavailable, "login_unavailable", "the login cannot complete now; start again")
		return
	}
	if err != nil || b.cfg.Clock().Sub(time.Unix(pending.Started, 0)) > loginTTL {
		writeError(w, http.StatusBadRequest, "login_expired", "this login is unknown or over; start again")
		return
	}
	if pending.State != q.Get("state") {
		writeError(w, http.StatusBadRequest, "login_mismatch", "this login was not started in this browser; start again")
		return
	}
	req := &oauth.AuthorizationRequest{Client: b.client, AuthURL: b.cfg.Provider.AuthorizationEndpoint, RedirectURL: b.callbackURL(),
		Issuer: b.cfg.Provider.Issuer, State: pending.State, Nonce: pending.Nonce, Verifier: pending.Verifier}
	b.setCookie(w, b.cookieName(false), "", -1)
	tok, err := req.Complete(r.Context(), q)
	if err != nil {
		var ae *oauth.AuthorizationError
		if errors.As(err, &ae) {
			writeError(w, http.StatusUnauthorized, "login_failed", ae.Error())
			return
		}
		b.log.Warn("authrefresh bff: code exchange failed", "err", err)
		writeError(w, http.StatusBadGateway, "login_failed", "the provider did not complete the login; start again")
		return
	}
	if old, err := r.Cookie(b.cookieName(true)); err == nil && len(old.Value) <= 64 {
		b.end(r.Context(), old.Value) // a new login replaces the browser's old session
	}
	id := tokenhttp.Random(32)
	now := b.cfg.Clock()
	s, err := b.sessions.Get(storeKey(id))
	if err == nil {
		err = s.Login(r.Context(), tok)
	}
	if err != nil {
		b.log.Error("authrefresh bff: keeping the session's token", "err", err)
		writeError(w, http.StatusInternalServerError, "session_not_kept", "the session could not be kept; try again")
		return
	}
	kept := newSession(tok.IDToken, now, now)
	if err := b.table.put(r.Context(), storeKey(id), tok.IDToken, &kept); err != nil {
		b.log.Error("authrefresh bff: keeping the session", "err", err)
		writeError(w, http.StatusInternalServerError, "session_not_kept", "the session could not be kept; try again")
		return
	}
	b.setCookie(w, b.cookieName(true), id, 0)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, pending.ReturnTo, http.StatusFound)
}

// current is the live session of r's cookie, touched, and its key; an
// error when there is none (see sessionTable.touch), answered by noSession.
func (b *BFF) current(r *http.Request) (key string, s session, err error) {
	id, found := cookieValue(r, b.cookieName(true))
	if !found || id == "" || len(id) > 64 {
		return "", session{}, errNoSession
	}
	key = storeKey(id)
	s, err = b.table.touch(r.Context(), key, b.cfg.Clock(), b.cfg.IdleTimeout, b.cfg.MaxAge)
	if errors.Is(err, errSessionEnded) {
		b.endKey(r.Context(), key) // idle or too old: revoked, forgotten everywhere
	}
	return key, s, err
}

// noSession answers a request current found no session for: 401, or 503
// while the sessions' store cannot be read (the session may well be
// there: the app should try again, not send its user to log in).
func (b *BFF) noSession(w http.ResponseWriter, err error) {
	if errors.Is(err, errStoreDown) {
		b.log.Warn("authrefresh bff: reading a session", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "sessions_unavailable", "the sessions cannot be read right now; try again")
		return
	}
	writeError(w, http.StatusUnauthorized, "not_logged_in", "no session: log in at /bff/login")
}

// guard refuses what a cross-site page could send: a request without the
// CSRF header, a cross-origin one (Sec-Fetch-Site, Origin), whatever its
// method. It reports whether r may go on.
func (b *BFF) guard(w http.ResponseWriter, r *http.Request) bool {
	if v := r.Header[b.csrfHeader]; len(v) == 0 || v[0] == "" { // Get would canonicalize the name anew
		writeError(w, http.StatusForbidden, "csrf", "the request lacks the "+b.cfg.CSRFHeader+" header the app sends")
		return false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		writeError(w, http.StatusForbidden, "cross_origin", "a request from another site")
		return false
	}
	if err := b.csrf.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "cross_origin", "a request from another origin")
		return false
	}
	return true
}

// user: GET /bff/user — who is logged in, from the ID token, until when,
// and the URL that logs out; never a token.
func (b *BFF) user(w http.ResponseWriter, r *http.Request) {
	if !b.guard(w, r) {
		return
	}
	_, s, err := b.current(r)
	if err != nil {
		b.noSession(w, err)
		return
	}
	c, _ := r.Cookie(b.cookieName(true))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"claims":          s.claims,
		"session_expires": s.created.Add(b.cfg.MaxAge).UTC().Format(time.RFC3339),
		"logout_url":      "/bff/logout?sid=" + logoutID(c.Value),
	})
}

// logoutID is the value a logout navigation must carry for the session of
// cookie value id: only a page that read /bff/user knows it, so a
// cross-site link cannot log the user out.
func logoutID(id string) string {
	sum := sha256.Sum256([]byte("authrefresh bff logout\x00" + id))
	return hex.EncodeToString(sum[:16])
}

// logout ends the session: the refresh token revoked, the session gone on
// every replica. GET /bff/logout?sid=… (the logout_url of /bff/user, for a
// navigation) then redirects to the provider's end-session endpoint with
// the ID token as id_token_hint — in a redirect, which the page's
// JavaScript never reads. POST /bff/logout (with the CSRF header, for
// fetch) answers JSON, its logout_url the end-session endpoint with the
// client's id instead: no answer a script reads holds the ID token.
func (b *BFF) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet:
		c, err := r.Cookie(b.cookieName(true))
		if err != nil || subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("sid")), []byte(logoutID(c.Value))) != 1 {
			writeError(w, http.StatusBadRequest, "logout_mismatch", "this logout link is not this session's: log out from the app")
			return
		}
	case http.MethodPost:
		if !b.guard(w, r) {
			return
		}
	default:
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET /bff/logout?sid=… (the logout_url of /bff/user) or POST /bff/logout")
		return
	}
	key, _, err := b.current(r)
	if errors.Is(err, errStoreDown) {
		b.noSession(w, err) // the cookie kept: the logout can be tried again
		return
	}
	live := err == nil
	b.setCookie(w, b.cookieName(true), "", -1)
	idToken := ""
	if live {
		idToken = b.table.idToken(r.Context(), key)
		b.endKey(r.Context(), key)
	}
	end, err := url.Parse(b.cfg.Provider.EndSessionEndpoint)
	if err != nil || b.cfg.Provider.EndSessionEndpoint == "" || !live {
		end = nil
	} else {
		q := end.Query()
		q.Set("post_logout_redirect_uri", b.base.String()+"/")
		q.Set("client_id", b.client.ClientID)
		if r.Method == http.MethodGet {
			q.Set("id_token_hint", idToken)
		}
		end.RawQuery = q.Encode()
	}
	if r.Method == http.MethodGet {
		to := "/"
		if end != nil {
			to = end.String()
		}
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	out := map[string]any{"logged_out": true}
	if end != nil {
		out["logout_url"] = end.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// end ends the session of cookie value id.
func (b *BFF) end(ctx context.Context, id string) { b.endKey(ctx, storeKey(id)) }

// endKey ends a session: its refresh token revoked at the provider (when
// it has a revocation endpoint), its token forgotten.
func (b *BFF) endKey(ctx context.Context, key string) {
	if !b.table.remove(ctx, key) {
		return
	}
	s, err := b.sessions.Get(key)
	if err != nil {
		return
	}
	if err := s.Logout(ctx); err != nil {
		b.log.Warn("authrefresh bff: revoking at logout", "err", err)
	}
}

// api forwards r to an API with the session's token.
func (b *BFF) api(w http.ResponseWriter, r *http.Request, a route) {
	if !b.guard(w, r) {
		return
	}
	key, _, err := b.current(r)
	if err != nil {
		b.noSession(w, err)
		return
	}
	a.forward.Forward(keyed.WithKey(r.Context(), key), w, r)
}

// forwarder forwards to up, the prefix replaced by up's path; the
// browser's cookies and the CSRF header stay here, and the API's cookies
// never reach the browser. An upgrade (a WebSocket) goes through the
// forwarder's httputil.ReverseProxy, with the same rules.
func (b *BFF) forwarder(up *url.URL, prefix string) *upstream.Forwarder {
	upPath := strings.TrimSuffix(up.Path, "/") + "/"
	rewrite := func(out, in *http.Request) {
		out.URL.Scheme, out.URL.Host = up.Scheme, up.Host
		out.URL.Path = upPath + strings.TrimPrefix(in.URL.Path, prefix)
		out.URL.RawPath = ""
		out.Host = up.Host
	}
	failed := func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, authrefresh.ErrSessionExpired) || errors.Is(err, authrefresh.ErrNotLoggedIn) {
			if key, ok := keyed.KeyFrom(r.Context()); ok {
				b.table.remove(r.Context(), key)
			}
			writeError(w, http.StatusUnauthorized, "session_expired", "the session ended: log in again at /bff/login")
			return
		}
		b.log.Warn("authrefresh bff: API request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, "upstream_unavailable", "the API could not be reached; try again")
	}
	// Canonical names, dropped without canonicalizing them anew.
	drop := []string{"Cookie", "Authorization", b.csrfHeader}
	return &upstream.Forwarder{
		Transport: b.sessions, Rewrite: rewrite, Drop: drop, DropAnswer: []string{"Set-Cookie"},
		ErrorHandler: failed, Buffers: &upstream.Buffers{}, // else each answer allocates 32 KiB
	}
}

// maxUpstreamConns bounds the connections kept to each API.
const maxUpstreamConns = 256

// upstreams sends each API request through its API's own transport
// (internal/upstream: kept-alive connections that never hand one
// exchange's answer to another — to another user's request, here), by
// scheme and host.
type upstreams map[apiOrigin]*upstream.Transport

// apiOrigin is an API's scheme and host.
type apiOrigin struct{ scheme, host string }

// RoundTrip implements http.RoundTripper.
func (u upstreams) RoundTrip(req *http.Request) (*http.Response, error) {
	t := u[apiOrigin{req.URL.Scheme, req.URL.Host}]
	if t == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("authrefresh bff: %s is no configured API's", req.URL.Host)
	}
	return t.RoundTrip(req)
}

// cookieValue is the value of r's cookie name as r.Cookie finds it,
// without making a Cookie of every cookie the browser sends: the session's
// lookup is on every API call.
func cookieValue(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			n, v, _ := strings.Cut(strings.Trim(part, " \t\r\n"), "=")
			if strings.Trim(n, " \t\r\n") != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if strings.IndexFunc(v, func(c rune) bool { return c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '\\' }) < 0 {
				return v, true
			}
		}
	}
	return "", false
}

// storeKey is the name a session's token is kept under: a hash of the
// cookie's value, so that a store's listing (files, Redis keys) holds no
// cookie that would open a session.
func storeKey(id string) string {
	// On the stack but the result: this is on every API call.
	var in [128]byte
	sum := sha256.Sum256(append(append(in[:0], "authrefresh bff session\x00"...), id...))
	var key [2 * sha256.Size]byte
	hex.Encode(key[:], sum[:])
	return string(key[:])
}

// localPath accepts a return URL that stays on this site: an absolute
// path, not "//host" nor "/\host" (which browsers read as another host),
// not one that decodes to either, without spaces or control characters. It
// is returned as given: re-encoding it could make "/%2F%20x" into "//%20x".
func localPath(raw string) (string, bool) {
	if raw == "" {
		return "/", true
	}
	if len(raw) > 2048 || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(u.Path, "//") || strings.Contains(u.Path, "\\") {
		return "", false
	}
	return raw, true
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
