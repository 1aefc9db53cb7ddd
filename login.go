package authrefresh

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// PasswordLogin posts {"username", "password"} as JSON to a seed-style login
// endpoint and returns the token of its answer, ready for Session.Login. A
// refused login is a *RefreshError of kind RefreshRejected carrying the
// server's message; client nil means a private client with a 30s timeout.
func PasswordLogin(ctx context.Context, client *http.Client, loginURL, username, password string) (*Token, error) {
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loginURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("authrefresh: invalid login URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return postForToken(ctx, client, req, TokenFields{}, time.Now)
}
