package authrefresh

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
