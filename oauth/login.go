package oauth

import (
	"context"
	"fmt"
	"net/url"

	authrefresh "github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
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

// userClient checks the client of a user login and returns it.
func userClient(flow string, c *Config) (*Config, error) {
	if c == nil || c.TokenURL == "" || c.ClientID == "" {
		return nil, fmt.Errorf("authrefresh: %s login needs Client with TokenURL and ClientID", flow)
	}
	return c, nil
}

// exchange posts a grant to the client's token endpoint, with its client
// authentication, for a login.
func (c *Config) exchange(ctx context.Context, form url.Values) (*authrefresh.Token, error) {
	req, err := c.request(ctx, c.TokenURL, form)
	if err != nil {
		return nil, tokenhttp.WithOp(err, "login")
	}
	return tokenhttp.Post(ctx, "login", c.HTTPClient, req, tokenhttp.Fields{})
}
