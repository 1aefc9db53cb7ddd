package jsonauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
)

// Refresher refreshes against a JSON refresh endpoint (the reference
// server's /auth/refresh, and many hand-written APIs):
// it POSTs {"refresh_token": "..."} as JSON and reads access_token (or
// accessToken), refresh_token (or refreshToken) and expires_in from the answer.
type Refresher struct {
	// URL of the refresh endpoint. Required.
	URL string
	// RequestField is the name of the refresh token in the request; "" means "refresh_token".
	RequestField string
	// Fields names the fields of the answer; the zero value accepts the usual spellings.
	Fields Fields
	// Header is added to the refresh request (an API key, say).
	Header http.Header
	// HTTPClient sends the request; nil means a private client with a 30s
	// timeout. Redirects are never followed, whatever its CheckRedirect says.
	// It must not use the refreshing Transport.
	HTTPClient *http.Client
	// LogoutURL, if set, is POSTed the same body by Session.Logout to revoke
	// the refresh token (an endpoint like /auth/logout).
	LogoutURL string
}

// Refresh implements Refresher.
func (r *Refresher) Refresh(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
	if tok.RefreshToken == "" {
		return nil, authrefresh.Rejected(errors.New("no refresh token"))
	}
	req, err := r.request(ctx, r.URL, tok.RefreshToken)
	if err != nil {
		return nil, authrefresh.Transient(err)
	}
	return tokenhttp.Post(ctx, "refresh", r.HTTPClient, req, tokenhttp.Fields(r.Fields))
}

// Revoke implements Revoker when LogoutURL is set.
func (r *Refresher) Revoke(ctx context.Context, tok *authrefresh.Token) error {
	if r.LogoutURL == "" || tok.RefreshToken == "" {
		return nil
	}
	req, err := r.request(ctx, r.LogoutURL, tok.RefreshToken)
	if err != nil {
		return err
	}
	return tokenhttp.Revoke(ctx, r.HTTPClient, req)
}

func (r *Refresher) request(ctx context.Context, url, refreshToken string) (*http.Request, error) {
	field := r.RequestField
	if field == "" {
		field = "refresh_token"
	}
	body, err := json.Marshal(map[string]string{field: refreshToken})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("authrefresh: invalid refresh URL")
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// Login posts {"username", "password"} as JSON to a login endpoint
// (the reference server's /auth/login, and many hand-written APIs) and returns
// the token of its answer, ready for Session.Login, which dates it. A refused
// login is a *RefreshError with Op "login" and kind RefreshRejected carrying
// the server's message. client nil means a private client with a 30s
// timeout; redirects are never followed.
func Login(ctx context.Context, client *http.Client, loginURL, username, password string) (*authrefresh.Token, error) {
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loginURL, bytes.NewReader(body))
	if err != nil {
		return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: "login", Err: fmt.Errorf("invalid login URL %q", loginURL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return tokenhttp.Post(ctx, "login", client, req, tokenhttp.Fields{})
}

// Fields names the fields of a token answer. An empty field means the
// usual spellings: access_token/accessToken, refresh_token/refreshToken,
// expires_in/expiresIn, token_type/tokenType.
type Fields struct {
	AccessToken, RefreshToken, ExpiresIn, TokenType string
}
