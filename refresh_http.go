package authrefresh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// maxTokenResponse bounds what a refresher reads from the auth server.
const maxTokenResponse = 1 << 20

// refreshHTTPClient is the token endpoints' default client: never the
// refreshing Transport, and never following a redirect, which would carry the
// refresh token or the client secret to wherever the redirect points.
var refreshHTTPClient = &http.Client{Timeout: 30 * time.Second, CheckRedirect: refuseRedirect}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// tokenEndpointClient is c made safe for a token endpoint: nil means
// refreshHTTPClient; a client of the caller's is copied (never modified) with
// redirects refused, whatever its CheckRedirect said.
func tokenEndpointClient(c *http.Client) (*http.Client, error) {
	if c == nil {
		return refreshHTTPClient, nil
	}
	if _, loops := c.Transport.(*Transport); loops {
		return nil, errors.New("a token endpoint's HTTPClient must not use the refreshing Transport")
	}
	safe := *c
	safe.CheckRedirect = refuseRedirect
	return &safe, nil
}

// postForToken sends a token request (op: "refresh" or "login") and turns
// the answer into an undated Token (the Session dates it) or a classified
// *RefreshError.
func postForToken(ctx context.Context, op string, hc *http.Client, req *http.Request, fields TokenFields) (*Token, error) {
	data, resp, err := send(ctx, op, hc, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, refusalError(op, resp.StatusCode, resp.Header, data)
	}
	tok, err := parseTokenResponse(data, resp.Header.Get("Content-Type"), fields)
	if err != nil {
		return nil, &RefreshError{Kind: RefreshTransient, Op: op, StatusCode: resp.StatusCode, Err: fmt.Errorf("%s: %w", endpointOf(req.URL), err)}
	}
	return tok, nil
}

// send performs req (marked so that no authrefresh Transport touches it) and
// reads at most maxTokenResponse bytes of the answer.
//
// A connection that closes before any answer is tried once more at once: it
// is most often a kept-alive connection the server or a load balancer had
// just closed, which net/http retries by itself only for idempotent methods.
// If the server did process the first attempt, the second presents a used
// refresh token — exactly what a later retry would do, so the immediate one
// adds no risk (a server grace period makes both safe).
func send(ctx context.Context, op string, hc *http.Client, req *http.Request) ([]byte, *http.Response, error) {
	client, err := tokenEndpointClient(hc)
	if err != nil {
		return nil, nil, &RefreshError{Kind: RefreshTransient, Op: op, Err: err}
	}
	resp, err := client.Do(req.WithContext(WithoutAuth(ctx)))
	if err != nil && connectionLost(err) && ctx.Err() == nil && req.GetBody != nil {
		retry := req.WithContext(WithoutAuth(ctx))
		if retry.Body, err = req.GetBody(); err == nil {
			resp, err = client.Do(retry)
		}
	}
	if err != nil {
		return nil, nil, &RefreshError{Kind: RefreshTransient, Op: op, Err: describeURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		return nil, nil, redirectError(op, resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, nil, &RefreshError{Kind: RefreshTransient, Op: op, StatusCode: resp.StatusCode, Err: fmt.Errorf("reading the answer of %s: %w", endpointOf(req.URL), err)}
	}
	if len(data) > maxTokenResponse {
		return nil, nil, &RefreshError{Kind: RefreshTransient, Op: op, StatusCode: resp.StatusCode, Err: fmt.Errorf("the answer of %s is larger than %d bytes", endpointOf(req.URL), maxTokenResponse)}
	}
	return data, resp, nil
}

// redirectError is the error of a token endpoint that answered a redirect.
func redirectError(op string, resp *http.Response) *RefreshError {
	where, from := "elsewhere", "the token endpoint"
	if loc, err := resp.Location(); err == nil {
		where = "to " + endpointOf(loc)
	}
	if resp.Request != nil && resp.Request.URL != nil {
		from = endpointOf(resp.Request.URL)
	}
	return &RefreshError{Kind: RefreshTransient, Op: op, StatusCode: resp.StatusCode,
		Err: fmt.Errorf("%s redirected %s; a token endpoint is never followed across a redirect (it would carry the credentials along): configure the final URL", from, where)}
}

// connectionLost reports a connection that closed or was reset before an
// answer arrived (not a refused dial, not a timeout).
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// describeURLError keeps a *url.Error's method, host and path but drops the
// query and user info: our URLs carry no secrets, but a user-configured one
// might (a key in the query).
func describeURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	where := "the auth server"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		where = endpointOf(u)
	}
	return fmt.Errorf("%s %s: %w", ue.Op, where, ue.Err)
}

// endpointOf names an endpoint in an error: scheme, host and path, without
// the query or user info (a user-configured URL might carry a key there).
func endpointOf(u *url.URL) string { return u.Scheme + "://" + u.Host + u.Path }

// TokenFields names the fields of a token response. An empty field means
// the usual spellings: access_token/accessToken, refresh_token/refreshToken,
// expires_in/expiresIn, token_type/tokenType.
type TokenFields struct {
	AccessToken, RefreshToken, ExpiresIn, TokenType string
}

// parseTokenResponse reads a token endpoint's answer, JSON or the
// form-encoded answer some OAuth servers still send, into an undated Token.
func parseTokenResponse(data []byte, contentType string, f TokenFields) (*Token, error) {
	fields := map[string]json.RawMessage{}
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/x-www-form-urlencoded" || mt == "text/plain" && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		vals, err := url.ParseQuery(string(data))
		if err != nil {
			return nil, errors.New("token response is not valid form data")
		}
		for k := range vals {
			raw, _ := json.Marshal(vals.Get(k))
			fields[k] = raw
		}
	} else if err := json.Unmarshal(data, &fields); err != nil {
		return nil, errors.New("token response is not a JSON object")
	}
	access, err := stringField(fields, f.AccessToken, "access_token", "accessToken")
	if err != nil {
		return nil, err
	}
	if access == "" {
		return nil, errors.New("token response has no access token")
	}
	refresh, err := stringField(fields, f.RefreshToken, "refresh_token", "refreshToken")
	if err != nil {
		return nil, err
	}
	tokenType, err := stringField(fields, f.TokenType, "token_type", "tokenType")
	if err != nil {
		return nil, err
	}
	expiresIn, err := secondsField(fields, f.ExpiresIn, "expires_in", "expiresIn")
	if err != nil {
		return nil, err
	}
	tok := &Token{AccessToken: access, RefreshToken: refresh, TokenType: tokenType, ExpiresIn: expiresIn}
	if tok.Scope, err = stringField(fields, "scope"); err != nil {
		return nil, err
	}
	if tok.IDToken, err = stringField(fields, "id_token"); err != nil {
		return nil, err
	}
	if tok.refreshExpiresIn, err = secondsField(fields, "refresh_expires_in"); err != nil {
		return nil, err
	}
	for _, known := range [][]string{{f.AccessToken, "access_token", "accessToken"}, {f.RefreshToken, "refresh_token", "refreshToken"},
		{f.ExpiresIn, "expires_in", "expiresIn"}, {f.TokenType, "token_type", "tokenType"}, {"scope", "id_token", "refresh_expires_in"}} {
		for _, k := range known {
			delete(fields, k)
		}
	}
	if len(fields) > 0 {
		tok.Extra = fields
	}
	return tok, nil
}

func lookup(fields map[string]json.RawMessage, name string, defaults ...string) (json.RawMessage, string) {
	if name != "" {
		return fields[name], name
	}
	for _, d := range defaults {
		if v, ok := fields[d]; ok {
			return v, d
		}
	}
	return nil, defaults[0]
}

func stringField(fields map[string]json.RawMessage, name string, defaults ...string) (string, error) {
	raw, key := lookup(fields, name, defaults...)
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("token response field %q is not a string", key)
	}
	return s, nil
}

// secondsField accepts a number or a numeric string; RFC 6749 says number,
// some servers send "3600".
func secondsField(fields map[string]json.RawMessage, name string, defaults ...string) (time.Duration, error) {
	raw, key := lookup(fields, name, defaults...)
	if raw == nil || string(raw) == "null" {
		return 0, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, fmt.Errorf("token response field %q is not a number", key)
		}
		n = json.Number(s)
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 10*365*24*3600 {
		return 0, fmt.Errorf("token response field %q is not a sensible number of seconds", key)
	}
	return time.Duration(f * float64(time.Second)), nil
}
