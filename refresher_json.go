package authrefresh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// JSONRefresher refreshes against an endpoint like the seeds' /auth/refresh:
// it POSTs {"refresh_token": "..."} as JSON and reads access_token (or
// accessToken), refresh_token (or refreshToken) and expires_in from the answer.
type JSONRefresher struct {
	// URL of the refresh endpoint. Required.
	URL string
	// RequestField is the name of the refresh token in the request; "" means "refresh_token".
	RequestField string
	// Fields names the fields of the answer; the zero value accepts the usual spellings.
	Fields TokenFields
	// Header is added to the refresh request (an API key, say).
	Header http.Header
	// HTTPClient sends the request; nil means a private client with a 30s
	// timeout that follows no redirects. It must not use the refreshing Transport.
	HTTPClient *http.Client
	// LogoutURL, if set, is POSTed the same body by Session.Logout to revoke
	// the refresh token (seed-style /auth/logout).
	LogoutURL string
	// Clock is the time source for expiry; nil means time.Now.
	Clock func() time.Time
}

// Refresh implements Refresher.
func (r *JSONRefresher) Refresh(ctx context.Context, tok *Token) (*Token, error) {
	if tok.RefreshToken == "" {
		return nil, Rejected(errors.New("no refresh token"))
	}
	req, err := r.request(ctx, r.URL, tok.RefreshToken)
	if err != nil {
		return nil, &RefreshError{Kind: RefreshTransient, Err: err}
	}
	return postForToken(ctx, r.HTTPClient, req, r.Fields, clockOrNow(r.Clock))
}

// Revoke implements Revoker when LogoutURL is set.
func (r *JSONRefresher) Revoke(ctx context.Context, tok *Token) error {
	if r.LogoutURL == "" || tok.RefreshToken == "" {
		return nil
	}
	req, err := r.request(ctx, r.LogoutURL, tok.RefreshToken)
	if err != nil {
		return err
	}
	return postForAck(ctx, r.HTTPClient, req)
}

func (r *JSONRefresher) request(ctx context.Context, url, refreshToken string) (*http.Request, error) {
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

// postForAck sends a revocation and accepts any 2xx.
func postForAck(ctx context.Context, hc *http.Client, req *http.Request) error {
	client, err := httpClientOrDefault(hc)
	if err != nil {
		return err
	}
	data, resp, err := send(ctx, client, req)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return classifyRefusal(resp, data)
	}
	return nil
}

func clockOrNow(c func() time.Time) func() time.Time {
	if c == nil {
		return time.Now
	}
	return c
}
