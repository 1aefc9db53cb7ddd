package authrefresh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// PasswordLogin posts {"username", "password"} as JSON to a login endpoint
// (the reference server's /auth/login, and many hand-written APIs) and returns
// the token of its answer, ready for Session.Login, which dates it. A refused
// login is a *RefreshError with Op "login" and kind RefreshRejected carrying
// the server's message. client nil means a private client with a 30s
// timeout; redirects are never followed.
func PasswordLogin(ctx context.Context, client *http.Client, loginURL, username, password string) (*Token, error) {
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loginURL, bytes.NewReader(body))
	if err != nil {
		return nil, &RefreshError{Kind: RefreshTransient, Op: "login", Err: fmt.Errorf("invalid login URL %q", loginURL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return postForToken(ctx, "login", client, req, TokenFields{})
}

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
	msg := "authrefresh: " + e.Flow + " login: " + serverText(e.Code, 100)
	if e.Description != "" {
		msg += ": " + serverText(e.Description, 300)
	}
	return msg
}

// randomString is n random bytes, base64url: a login's state and nonce.
// (The PKCE verifier and challenge are x/oauth2's GenerateVerifier and
// S256ChallengeFromVerifier.)
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// userClient checks the client of a user login and returns it.
func userClient(flow string, c *OAuth2Refresher) (*OAuth2Refresher, error) {
	if c == nil || c.TokenURL == "" || c.ClientID == "" {
		return nil, fmt.Errorf("authrefresh: %s login needs Client with TokenURL and ClientID", flow)
	}
	return c, nil
}

// exchange posts a grant to the client's token endpoint, with its client
// authentication, for a login.
func (c *OAuth2Refresher) exchange(ctx context.Context, form url.Values) (*Token, error) {
	req, err := c.request(ctx, c.TokenURL, form)
	if err != nil {
		return nil, withOp(err, "login")
	}
	return postForToken(ctx, "login", c.HTTPClient, req, TokenFields{})
}

// withOp names the operation of a *RefreshError made before it was known.
func withOp(err error, op string) error {
	if re, ok := err.(*RefreshError); ok && re.Op == "" {
		re.Op = op
	}
	return err
}
