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
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxTokenResponse bounds what a refresher reads from the auth server.
const maxTokenResponse = 1 << 20

// refreshHTTPClient is the refreshers' own client: never the refreshing
// Transport (behaviour 8), and never following a redirect, which would carry
// the refresh token to wherever the redirect points.
var refreshHTTPClient = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func httpClientOrDefault(c *http.Client) (*http.Client, error) {
	if c == nil {
		return refreshHTTPClient, nil
	}
	if _, loops := c.Transport.(*Transport); loops {
		return nil, errors.New("authrefresh: a refresher's HTTPClient must not use the refreshing Transport")
	}
	return c, nil
}

// postForToken sends a refresh request and turns the answer into a Token or
// a classified *RefreshError.
func postForToken(ctx context.Context, hc *http.Client, req *http.Request, fields TokenFields, now func() time.Time) (*Token, error) {
	client, err := httpClientOrDefault(hc)
	if err != nil {
		return nil, &RefreshError{Kind: RefreshTransient, Err: err}
	}
	data, resp, err := send(ctx, client, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, classifyRefusal(resp, data)
	}
	tok, err := parseTokenResponse(data, resp.Header.Get("Content-Type"), fields, now())
	if err != nil {
		return nil, &RefreshError{Kind: RefreshTransient, StatusCode: resp.StatusCode, Err: err}
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
func send(ctx context.Context, client *http.Client, req *http.Request) ([]byte, *http.Response, error) {
	resp, err := client.Do(req.WithContext(WithoutAuth(ctx)))
	if err != nil && connectionLost(err) && ctx.Err() == nil && req.GetBody != nil {
		retry := req.WithContext(WithoutAuth(ctx))
		if retry.Body, err = req.GetBody(); err == nil {
			resp, err = client.Do(retry)
		}
	}
	if err != nil {
		return nil, nil, &RefreshError{Kind: RefreshTransient, Err: describeURLError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, nil, &RefreshError{Kind: RefreshTransient, StatusCode: resp.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(data) > maxTokenResponse {
		return nil, nil, &RefreshError{Kind: RefreshTransient, StatusCode: resp.StatusCode, Err: fmt.Errorf("answer larger than %d bytes", maxTokenResponse)}
	}
	return data, resp, nil
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
		where = u.Scheme + "://" + u.Host + u.Path
	}
	return fmt.Errorf("%s %s: %w", ue.Op, where, ue.Err)
}

// classifyRefusal turns a non-2xx answer into a RefreshError: 400, 401 and
// 403 mean the refresh token (or the client) is refused, so the session ends;
// anything else (429, 5xx, an odd 404 from a misrouted proxy) may pass.
func classifyRefusal(resp *http.Response, body []byte) error {
	e := &RefreshError{Kind: RefreshTransient, StatusCode: resp.StatusCode}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		e.Kind = RefreshRejected
	}
	var oauthErr struct {
		Error       any    `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	if json.Unmarshal(body, &oauthErr) == nil {
		if code, ok := oauthErr.Error.(string); ok {
			e.Code = truncate(code, 100)
		}
		e.Description = truncate(firstNonEmpty(oauthErr.Description, oauthErr.Message), 300)
	}
	// A 400 that is plainly not about the grant (a malformed request we
	// sent, a temporarily unavailable server) does not end the session.
	if e.Kind == RefreshRejected && e.Code == "temporarily_unavailable" {
		e.Kind = RefreshTransient
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return time.Duration(min(secs, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// TokenFields names the fields of a token response. An empty field means
// the usual spellings: access_token/accessToken, refresh_token/refreshToken,
// expires_in/expiresIn, token_type/tokenType.
type TokenFields struct {
	AccessToken, RefreshToken, ExpiresIn, TokenType string
}

// parseTokenResponse reads a token endpoint's answer: JSON, or the
// form-encoded answer some OAuth servers still send.
func parseTokenResponse(data []byte, contentType string, f TokenFields, now time.Time) (*Token, error) {
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
	return TokenFromResponse(access, refresh, tokenType, expiresIn, now), nil
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
