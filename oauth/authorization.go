package oauth

import (
	"github.com/authrefresh/authrefresh/internal/safetext"
)

// AuthorizationError is a browser or device login that ended without a
// token: the user denied it, the code expired, the redirect did not carry
// what was sent, or no one answered in time. Errors of the token endpoint
// itself (a wrong client secret, a network failure) are *RefreshError
// instead, with Op "login".
type AuthorizationError struct {
	// Flow is "browser" or "device".
	Flow string
	// Code says what happened: the provider's error ("access_denied",
	// "expired_token", "invalid_request"…), or one of ours: "state_mismatch",
	// "issuer_mismatch", "nonce_mismatch", "timeout".
	Code string
	// Description is the provider's error_description, or ours.
	Description string
}

func (e *AuthorizationError) Error() string {
	msg := "authrefresh: " + e.Flow + " login: " + safetext.Clip(e.Code, 100)
	if e.Description != "" {
		msg += ": " + safetext.Clip(e.Description, 300)
	}
	return msg
}
