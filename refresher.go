package authrefresh

import "context"

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
