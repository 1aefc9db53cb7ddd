package authserver

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// Server is the reference auth server. It is an http.Handler; all its
// methods are safe for concurrent use.
type Server struct {
	cfg      Config
	key      *signingKey
	verifier *Verifier
	dpop     *DPoPVerifier
	users    map[string][]byte // bcrypt hashes
	dummy    []byte            // compared against for unknown users: same timing
	refresh  *refreshStore
	flows    *flowStore
	// assertions are the client assertions seen (private_key_jwt replay check).
	assertions seenAssertions
	limiter    *loginLimiter
	products   *productStore
	faults     faults
	chaos      chaos
	counters   *counterSet
	epoch      atomic.Uint64 // bumped by RevokeAccessTokens
	handler    http.Handler
	log        *slog.Logger
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	c := cfg.withDefaults()
	if c.ExpiredStatus != 401 && c.ExpiredStatus != 403 {
		return nil, fmt.Errorf("authserver: ExpiredStatus must be 401 or 403, not %d", c.ExpiredStatus)
	}
	key, err := newSigningKey(c.Algorithm)
	if err != nil {
		return nil, err
	}
	cost := c.PasswordCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	s := &Server{
		cfg:      c,
		key:      key,
		users:    make(map[string][]byte, len(c.Users)),
		refresh:  newRefreshStore(),
		flows:    newFlowStore(),
		limiter:  newLoginLimiter(c.LoginFailuresPerUser, c.LoginFailuresPerIP),
		products: &productStore{},
		counters: newCounterSet(),
		dpop:     &DPoPVerifier{RequireNonce: c.DPoPNonce, Clock: c.Clock},
		log:      c.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	}
	for user, pw := range c.Users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if err != nil {
			return nil, fmt.Errorf("authserver: hashing the password of %q: %w", user, err)
		}
		s.users[user] = h
	}
	s.dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user"), cost)
	s.faults.expiredStatus.Store(int32(c.ExpiredStatus))
	s.verifier = &Verifier{
		Algorithm:      c.Algorithm,
		Keys:           map[string]crypto.PublicKey{key.kid: key.priv.Public()},
		Issuer:         c.Issuer,
		Audience:       c.Audience,
		Clock:          c.Clock,
		Revoked:        s.accessRevoked,
		OnRefuse:       s.counters.unauthorized,
		AcceptRawToken: true,
		DPoP:           s.dpop,
	}
	s.handler = s.routes()
	return s, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Verifier returns a Verifier for this server's access tokens, to protect
// other Go handlers with Verifier.Middleware.
func (s *Server) Verifier() *Verifier {
	v := *s.verifier
	v.OnRefuse = nil
	return &v
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) now() time.Time { return s.cfg.Clock() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(path, method string, h http.HandlerFunc) {
		mux.Handle(path, s.counters.count(path, allow(method, h)))
	}
	handle("/auth/login", http.MethodPost, s.handleLogin)
	tokenEndpoint := func(path string, h http.HandlerFunc) {
		mux.Handle(path, s.counters.count(path, s.chaosTokenEndpoint(allow(http.MethodPost, h))))
	}
	tokenEndpoint("/auth/refresh", s.handleRefresh)
	tokenEndpoint("/auth/refresh-token", s.handleRefresh) // another common path, body {"token": ...}
	handle("/auth/logout", http.MethodPost, s.handleLogout)
	tokenEndpoint("/oauth/token", s.handleOAuthToken)
	handle("/oauth/revoke", http.MethodPost, s.handleOAuthRevoke)
	handle("/oauth/authorize", http.MethodGet, s.handleAuthorize)
	handle("/oauth/device_authorization", http.MethodPost, s.handleDeviceAuthorization)
	handle("/device", http.MethodGet, s.handleDevicePage)
	handle("/.well-known/jwks.json", http.MethodGet, s.handleJWKS)
	handle("/.well-known/oauth-authorization-server", http.MethodGet, s.handleMetadata)
	api := s.apiVerifier()
	mux.Handle("/api/v1/data", s.counters.count("/api/v1/data", s.chaosAPI(s.apiLatency(api.Middleware(allow("GET POST", s.handleData))))))
	mux.Handle("/api/v1/me", s.counters.count("/api/v1/me", s.chaosAPI(s.apiLatency(api.Middleware(allow(http.MethodGet, s.handleMe))))))
	if s.cfg.EnableControlAPI {
		s.controlRoutes(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
	})
	return s.recoverPanics(s.cors(s.limitBodies(mux)))
}

// apiVerifier reads the expired-token status at request time, so tests can
// flip it between 401 and 403.
func (s *Server) apiVerifier() *dynamicStatusVerifier { return &dynamicStatusVerifier{s: s} }

type dynamicStatusVerifier struct{ s *Server }

func (d *dynamicStatusVerifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := *d.s.verifier
		v.ExpiredStatus = int(d.s.faults.expiredStatus.Load())
		v.Middleware(next).ServeHTTP(w, r)
	})
}

// allow answers 405 with a JSON body for other methods (and handles OPTIONS
// via the CORS layer before this).
func allow(methods string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range strings.Fields(methods) {
			if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
				h(w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.ReplaceAll(methods, " ", ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
	}
}

func (s *Server) limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// recoverPanics is a last line of defence: a bug becomes a logged 500, not a
// dropped connection. Tests and fuzzing assert it never fires.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.counters.panics.Add(1)
				s.log.Error("authserver: panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "server_error", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// issueAccess signs an access token for a family's user.
func (s *Server) issueAccess(user, clientID, scope, sid, jkt string, now time.Time) (string, error) {
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   s.cfg.Issuer,
			Subject:  user,
			Audience: jwt.ClaimStrings{s.cfg.Audience},
			// NumericDates are whole seconds: round exp up so the token
			// lives at least the expires_in the answer promises.
			ExpiresAt: jwt.NewNumericDate(ceilSecond(now.Add(s.cfg.AccessTTL))),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        fmt.Sprintf("%d.%s", s.epoch.Load(), newOpaqueToken()[:16]),
		},
		Scope:     scope,
		ClientID:  clientID,
		SessionID: sid,
	}
	if jkt != "" {
		claims.Confirmation = &Confirmation{JKT: jkt}
	}
	t := jwt.NewWithClaims(s.key.method, claims)
	t.Header["kid"] = s.key.kid
	return t.SignedString(s.key.priv)
}

// accessRevoked refuses access tokens of revoked families and tokens issued
// before the last RevokeAccessTokens.
func (s *Server) accessRevoked(c *Claims) bool {
	if c.SessionID != "" && s.refresh.isRevoked(c.SessionID) {
		return true
	}
	epoch, _, _ := strings.Cut(c.ID, ".")
	n, err := strconv.ParseUint(epoch, 10, 64)
	return err != nil || n != s.epoch.Load()
}

// RevokeAccessTokens makes every access token issued so far invalid (as if
// the server's sessions were killed); refresh tokens stay valid. Tests use it
// to make every in-flight request fail with 401 at once.
func (s *Server) RevokeAccessTokens() { s.epoch.Add(1) }

// RevokeRefreshToken revokes the family of a refresh token, as logout does.
func (s *Server) RevokeRefreshToken(token string) bool {
	ok := s.refresh.revokeToken(token)
	if ok {
		s.counters.revocations.Add(1)
	}
	return ok
}

var (
	errBadCredentials = errors.New("invalid username or password")
	errUnknownClient  = errors.New("unknown client")
)

func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
