// Package authserver is authrefresh's reference auth server: a small, strict
// JWT issuer with rotating refresh tokens and reuse detection, a protected
// demo API, and the controls a test double needs (an injectable clock, fault
// injection, counters).
//
// It serves a JSON login flow (/auth/login, /auth/refresh, /auth/logout) as
// hand-written APIs commonly do,
// RFC 6749 (/oauth/token), RFC 7009 (/oauth/revoke), RFC 8414 metadata and a
// JWKS, and the protected API /api/v1/data and /api/v1/me. State is in memory.
package authserver

import (
	"crypto"
	"log/slog"
	"time"
)

// Config builds a Server. The zero value is a working server with the demo
// user, 5-minute access tokens, rotation with reuse detection, and EdDSA.
type Config struct {
	// Issuer is the JWT "iss" and the RFC 8414 issuer; "" means "authrefresh".
	Issuer string
	// Audience is the JWT "aud" the API requires; "" means "authrefresh-api".
	Audience string
	// Algorithm signs access tokens: "EdDSA" (default), "ES256" or "RS256".
	// Verification accepts this algorithm only.
	Algorithm string
	// AccessTTL is an access token's lifetime; 0 means 5 minutes. Down to 1s.
	AccessTTL time.Duration
	// RefreshTTL is a refresh token family's absolute lifetime, counted from
	// the login; 0 means 24 hours.
	RefreshTTL time.Duration
	// DisableRotation makes /auth/refresh and the refresh_token grant return
	// the same refresh token instead of a new one (no reuse detection then).
	DisableRotation bool
	// GracePeriod lets the immediate predecessor of a family's live refresh
	// token be replayed for this long after its use, getting the same answer
	// (Auth0 "reuse interval"). 0, the default, means any reuse revokes.
	GracePeriod time.Duration
	// ExpiredStatus is the status of a request with an expired or revoked
	// access token: 401 (default) or 403 (as some APIs answer).
	ExpiredStatus int
	// Users maps usernames to passwords (hashed at start). nil means one
	// demo user, DemoUser/DemoPassword.
	Users map[string]string
	// Clients maps OAuth client ids to secrets for /oauth/token. An empty
	// secret makes a public client. nil means DemoClientID/DemoClientSecret.
	// Requests without client authentication are accepted as public, unless
	// RequireClientAuth.
	Clients map[string]string
	// ClientKeys are the public keys of clients that authenticate with
	// private_key_jwt (RFC 7523): a signed assertion instead of a secret.
	// A client listed here needs no entry in Clients.
	ClientKeys map[string]crypto.PublicKey
	// RequireClientAuth refuses token requests without client authentication.
	RequireClientAuth bool
	// DPoPNonce makes the token endpoint and the API require the server's
	// nonce in every DPoP proof (RFC 9449 §8–9); RotateDPoPNonce changes it.
	// DPoP itself is always on: a token request with a proof gets tokens
	// bound to its key.
	DPoPNonce bool
	// PasswordCost is the bcrypt cost; 0 means bcrypt.DefaultCost. Tests use
	// bcrypt.MinCost to stay fast.
	PasswordCost int
	// LoginFailuresPerUser and LoginFailuresPerIP are how many failed logins
	// a minute are tolerated before 429 with Retry-After; 0 means 5 and 20,
	// negative means unlimited.
	LoginFailuresPerUser, LoginFailuresPerIP int
	// AllowedOrigins are the CORS origins allowed to call the server from a
	// browser ("*" for any). nil means none.
	AllowedOrigins []string
	// MaxBodyBytes limits request bodies (413 beyond); 0 means 1 MiB.
	MaxBodyBytes int64
	// AutoApproveUser is the user the authorization endpoint
	// (/oauth/authorize) logs in without asking, as a test double of a
	// browser login; it must be a key of Users. "" means none: every
	// authorization request is answered access_denied.
	AutoApproveUser string
	// DeviceInterval is the polling interval the device authorization
	// endpoint announces (RFC 8628), in whole seconds; 0 means 5 s.
	DeviceInterval time.Duration
	// DeviceCodeTTL is how long a device code waits for approval; 0 means
	// 10 minutes.
	DeviceCodeTTL time.Duration
	// MaxPendingFlows bounds the authorization codes and device grants
	// held at once (anyone may ask for them); past it, after dropping the
	// expired ones, a request is answered temporarily_unavailable. 0 means
	// 10,000.
	MaxPendingFlows int
	// EnableControlAPI exposes the test-double controls over HTTP under
	// /_control/. Off by default: they let anyone revoke tokens and inject faults.
	EnableControlAPI bool
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives one record per error-worth event; nil means silent.
	// Tokens and passwords are never logged.
	Logger *slog.Logger
}

// The demo credentials of a zero Config.
const (
	DemoUser         = "demo"
	DemoPassword     = "demo-password"
	DemoClientID     = "demo-client"
	DemoClientSecret = "demo-secret"
)

func (c *Config) withDefaults() Config {
	d := *c
	if d.Issuer == "" {
		d.Issuer = "authrefresh"
	}
	if d.Audience == "" {
		d.Audience = "authrefresh-api"
	}
	if d.Algorithm == "" {
		d.Algorithm = "EdDSA"
	}
	if d.AccessTTL <= 0 {
		d.AccessTTL = 5 * time.Minute
	}
	if d.RefreshTTL <= 0 {
		d.RefreshTTL = 24 * time.Hour
	}
	if d.ExpiredStatus == 0 {
		d.ExpiredStatus = 401
	}
	if d.Users == nil {
		d.Users = map[string]string{DemoUser: DemoPassword}
	}
	if d.Clients == nil {
		d.Clients = map[string]string{DemoClientID: DemoClientSecret}
	}
	if d.LoginFailuresPerUser == 0 {
		d.LoginFailuresPerUser = 5
	}
	if d.LoginFailuresPerIP == 0 {
		d.LoginFailuresPerIP = 20
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.DeviceInterval < time.Second {
		d.DeviceInterval = 5 * time.Second
	}
	d.DeviceInterval = d.DeviceInterval.Truncate(time.Second)
	if d.MaxPendingFlows <= 0 {
		d.MaxPendingFlows = 10_000
	}
	if d.DeviceCodeTTL <= 0 {
		d.DeviceCodeTTL = 10 * time.Minute
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	return d
}
