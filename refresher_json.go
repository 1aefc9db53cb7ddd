package authrefresh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// JSONRefresher refreshes against a JSON refresh endpoint (the reference
// server's /auth/refresh, and many hand-written APIs):
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
	// timeout. Redirects are never followed, whatever its CheckRedirect says.
	// It must not use the refreshing Transport.
	HTTPClient *http.Client
	// LogoutURL, if set, is POSTed the same body by Session.Logout to revoke
	// the refresh token (an endpoint like /auth/logout).
	LogoutURL string
}

// Refresh implements Refresher.
func (r *JSONRefresher) Refresh(ctx context.Context, tok *Token) (*Token, error) {
	if tok.RefreshToken == "" {
		return nil, Rejected(errors.New("no refresh token"))
	}
	req, err := r.request(ctx, r.URL, tok.RefreshToken)
	if err != nil {
		return nil, Transient(err)
	}
	return postForToken(ctx, "refresh", r.HTTPClient, req, r.Fields)
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
	data, resp, err := send(ctx, "revoke", hc, req)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return refusalError("revoke", resp.StatusCode, resp.Header, data)
	}
	return nil
}
