package authrefresh

import "context"

// skipKey marks a context with a per-request opt-out; one key, so a request
// costs one context lookup.
type skipKey struct{}

type skip int

const (
	skipRefresh skip = 1 << iota
	skipAuth
)

// WithoutAuth returns a context under which a Transport sends the request
// untouched: no token, no refresh, no replay.
func WithoutAuth(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipKey{}, skipOf(ctx)|skipAuth)
}

// WithoutRefresh returns a context under which a Transport attaches the
// token but returns a refusal as it is, without refreshing or replaying.
func WithoutRefresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipKey{}, skipOf(ctx)|skipRefresh)
}

func skipOf(ctx context.Context) skip {
	s, _ := ctx.Value(skipKey{}).(skip)
	return s
}
