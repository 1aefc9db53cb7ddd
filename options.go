package authrefresh

import (
	"context"
	"log/slog"
	"time"
)

// Options tune a Session. The zero value is a sensible default for every field.
type Options struct {
	// RefreshAhead is the fraction of a token's lifetime after which the next
	// request starts a refresh in the background while still using the valid
	// token. Being a fraction, it suits 1-second and 1-hour tokens alike.
	// 0 means 0.75; a negative value disables refresh-ahead (refresh only when
	// expired or refused).
	RefreshAhead float64
	// RefreshJitter spreads each token's refresh-ahead point earlier by a
	// random part of its lifetime, up to this fraction (0.1: up to 10 %
	// earlier, so between 0.65 and 0.75 of the lifetime by default), so that
	// many tokens issued in the same second — a server holding tokens for
	// thousands of users, after a deploy — do not all refresh in the same
	// second. 0 means none.
	RefreshJitter float64
	// RefreshTimeout bounds one refresh: the wait for a cross-process lock,
	// and then, afresh, the exchange with the auth server (so that a long
	// wait for the lock does not leave the refresh too little time, and
	// cancel it after the server rotated the token). It runs detached from
	// the callers' contexts. 0 means 30s.
	RefreshTimeout time.Duration
	// MinBackoff and MaxBackoff space out attempts after a transient failure:
	// the n-th consecutive failure waits a jittered MinBackoff·2ⁿ⁻¹, capped at
	// MaxBackoff, or the server's Retry-After if that is longer (still capped).
	// Meanwhile calls that need a new token fail fast with the last error,
	// unless the next attempt comes within BackoffWait. The same doubling
	// spaces out refreshes caused by refusals of tokens the server never
	// accepted (see ErrFreshTokenRefused). 0 means 200ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// BackoffWait is how long a call that needs a new token waits for the
	// next attempt when a backoff is running, instead of failing at once: a
	// blip at the auth server (one 503, one dropped connection) then costs
	// the callers a short wait, not an error, while a long outage still fails
	// them fast. The call never waits past its context's deadline, and waits
	// at most once. 0 means 1s; negative means never wait.
	BackoffWait time.Duration
	// Clock returns the current time; nil means time.Now. It is the only
	// clock the Session reads: every token it takes in is dated by it, and
	// every deadline is counted on it. Tests inject one.
	Clock func() time.Time
	// Logger receives debug records about refreshes and warnings about store
	// failures. Tokens are always redacted. nil means silent.
	Logger *slog.Logger
	// OnTokenChange is called after a new token has been saved to the store
	// (refresh, Login, adoption of another process's token) and after Logout
	// (new == nil), before the callers waiting for that token are released.
	// Calls never overlap. It must not call Refresh.
	OnTokenChange func(old, new *Token)
	// OnSessionExpired is called exactly once when the refresh token is
	// rejected and the session ends, before the waiting callers are released.
	// It is not called by Logout. It must not call Refresh.
	OnSessionExpired func(err error)
	// OnStoreError is called when a renewed token could not be saved to the
	// store (a full disk, a read-only file system, Redis down), after one
	// immediate retry. The Session keeps using the new token — it is valid —
	// and saves it again at the next refresh; but another process, or this
	// one after a restart, will find only the previous token, whose refresh
	// token the server may already have retired. An application that cannot
	// afford that can alert, or stop: Session.StoreError says whether the
	// current token is unsaved. Calls never overlap with other hooks.
	OnStoreError func(err error)
}

// withDefaults is o with every zero field replaced by its documented default.
func (o Options) withDefaults() Options {
	if o.RefreshAhead == 0 {
		o.RefreshAhead = 0.75
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.BackoffWait == 0 {
		o.BackoffWait = time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(discardHandler{})
	}
	return o
}

// discardHandler is slog.DiscardHandler, which needs Go 1.24.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
