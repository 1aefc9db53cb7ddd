package authrefresh

import (
	"context"
	"time"
)

// Refresher obtains a new token in exchange for the current one, usually by
// presenting tok.RefreshToken to the auth server.
//
// A Session calls Refresh from one goroutine at a time, under a context of its
// own (detached from any caller, bounded by Options.RefreshTimeout). The token
// passed in is a copy the Refresher may keep. A failure should be a
// *RefreshError saying whether the refresh token was rejected (the session is
// over) or the failure is transient; any other error counts as transient.
//
// If the returned token has no RefreshToken, the Session keeps the old one
// (servers without rotation send none).
type Refresher interface {
	Refresh(ctx context.Context, tok *Token) (*Token, error)
}

// RefreshFunc adapts a function to the Refresher interface.
type RefreshFunc func(ctx context.Context, tok *Token) (*Token, error)

// Refresh calls f.
func (f RefreshFunc) Refresh(ctx context.Context, tok *Token) (*Token, error) { return f(ctx, tok) }

// Revoker is an optional Refresher capability used by Session.Logout to revoke
// the refresh token on the server (RFC 7009) before forgetting it.
type Revoker interface {
	Revoke(ctx context.Context, tok *Token) error
}

// Acquirer is an optional Refresher capability: a Refresher that can get a
// token with nothing to start from. A Session whose Refresher is an
// Acquirer needs no Login: with an empty store, it acquires.
type Acquirer interface {
	Acquire(ctx context.Context) (*Token, error)
}

// Prover is an optional Refresher capability: a Refresher that signs the
// DPoP proofs (RFC 9449) a token of type "DPoP" needs on every request.
// A Transport sends such a token only with a proof from its Session's
// Refresher, never as a bearer token; oauth.Config with a DPoP key is one.
type Prover interface {
	// Proof returns the DPoP header for a request of method to target
	// carrying tok, signed now with the key tok is bound to; nonce, if not
	// empty, is the one the server last handed out.
	Proof(tok *Token, method, target, nonce string, now time.Time) (string, error)
}
