package authrefresh

import (
	"context"
	"errors"
)

// The boundary of a refresh: whatever a Refresher returned, or a waiting
// caller's ended context, becomes a *RefreshError. What a token endpoint's
// answer means is decided in internal/tokenhttp.

// asRefreshError is the error boundary of a refresh: whatever a Refresher
// returned becomes a *RefreshError. A plain error counts as transient.
func asRefreshError(err error) *RefreshError {
	var re *RefreshError
	if errors.As(err, &re) {
		return re
	}
	return &RefreshError{Kind: RefreshTransient, Err: err}
}

// cancelled is the error of a caller whose context ended while it waited.
func cancelled(ctx context.Context) error {
	return &RefreshError{Kind: RefreshCancelled, Err: context.Cause(ctx)}
}
