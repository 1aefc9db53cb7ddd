package tokenhttp

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
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

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
)

// maxTokenResponse bounds what a refresher reads from the auth server.
const maxTokenResponse = 1 << 20

// refreshHTTPClient is the token endpoints' default client: never the
// refreshing Transport, and never following a redirect, which would carry the
// refresh token or the client secret to wherever the redirect points.
var refreshHTTPClient = &http.Client{Timeout: 30 * time.Second, CheckRedirect: refuseRedirect}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Client is c made safe for a token endpoint: nil means
// refreshHTTPClient; a client of the caller's is copied (never modified) with
// redirects refused, whatever its CheckRedirect said.
func Client(c *http.Client) (*http.Client, error) {
	if c == nil {
		return refreshHTTPClient, nil
	}
	if _, loops := c.Transport.(*authrefresh.Transport); loops {
		return nil, errors.New("a token endpoint's HTTPClient must not use the refreshing Transport")
	}
	safe := *c
	safe.CheckRedirect = refuseRedirect
	return &safe, nil
}

// Post sends a token request (op: "refresh" or "login") and turns
// the answer into an undated Token (the Session dates it) or a classified
// *RefreshError.
func Post(ctx context.Context, op string, hc *http.Client, req *http.Request, fields Fields) (*authrefresh.Token, error) {
	data, resp, err := Send(ctx, op, hc, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, Refusal(op, resp.StatusCode, resp.Header, data)
	}
	tok, err := ParseResponse(data, resp.Header.Get("Content-Type"), fields)
	if err != nil {
		return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: op, StatusCode: resp.StatusCode, Err: fmt.Errorf("%s: %w", Endpoint(req.URL), err)}
	}
	return tok, nil
}

// Send performs req (marked so that no authrefresh Transport touches it) and
// reads at most maxTokenResponse bytes of the answer.
//
// A connection that closes before any answer is tried once more at once: it
// is most often a kept-alive connection the server or a load balancer had
// just closed, which net/http retries by itself only for idempotent methods.
// If the server did process the first attempt, the second presents a used
// refresh token — exactly what a later retry would do, so the immediate one
// adds no risk (a server grace period makes both safe).
func Send(ctx context.Context, op string, hc *http.Client, req *http.Request) ([]byte, *http.Response, error) {
	first := true
	return SendBuilt(ctx, op, hc, func() (*http.Request, error) {
		if first {
			first = false
			return req, nil
		}
		if req.GetBody == nil {
			return nil, errors.New("the request body cannot be sent again")
		}
		retry := req.Clone(ctx)
		var err error
		retry.Body, err = req.GetBody()
		return retry, err
	})
}

// SendBuilt is Send for a request that must be built anew for a second
// attempt: one whose DPoP proof or client assertion (a jti the server
// remembers) would be refused if sent twice. build is called once per
// attempt.
func SendBuilt(ctx context.Context, op string, hc *http.Client, build func() (*http.Request, error)) ([]byte, *http.Response, error) {
	client, err := Client(hc)
	if err != nil {
		return nil, nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: op, Err: err}
	}
	req, err := build()
	if err != nil {
		return nil, nil, err
	}
	resp, err := client.Do(req.WithContext(authrefresh.WithoutAuth(ctx)))
	if err != nil && connectionLost(err) && ctx.Err() == nil {
		if retry, berr := build(); berr == nil {
			resp, err = client.Do(retry.WithContext(authrefresh.WithoutAuth(ctx)))
		}
	}
	if err != nil {
		return nil, nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: op, Err: DescribeURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		return nil, nil, RedirectError(op, resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: op, StatusCode: resp.StatusCode, Err: fmt.Errorf("reading the answer of %s: %w", Endpoint(req.URL), err)}
	}
	if len(data) > maxTokenResponse {
		return nil, nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: op, StatusCode: resp.StatusCode, Err: fmt.Errorf("the answer of %s is larger than %d bytes", Endpoint(req.URL), maxTokenResponse)}
	}
	return data, resp, nil
}

// RedirectError is the error of a token endpoint that answered a redirect.
func RedirectError(op string, resp *http.Response) *authrefresh.RefreshError {
	where, from := "elsewhere", "the token endpoint"
	if loc, err := resp.Location(); err == nil {
		where = "to " + Endpoint(loc)
	}
	if resp.Request != nil && resp.Request.URL != nil {
		from = Endpoint(resp.Request.URL)
	}
	return &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: op, StatusCode: resp.StatusCode,
		Err: fmt.Errorf("%s redirected %s; a token endpoint is never followed across a redirect (it would carry the credentials along): configure the final URL", from, where)}
}

// connectionLost reports a connection that closed or was reset before an
// answer arrived (not a refused dial, not a timeout).
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// DescribeURLError keeps a *url.Error's method, host and path but drops the
// query and user info: our URLs carry no secrets, but a user-configured one
// might (a key in the query).
func DescribeURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	where := "the auth server"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		where = Endpoint(u)
	}
	return fmt.Errorf("%s %s: %w", ue.Op, where, ue.Err)
}

// Endpoint names an endpoint in an error: scheme, host and path, without
// the query or user info (a user-configured URL might carry a key there).
func Endpoint(u *url.URL) string { return u.Scheme + "://" + u.Host + u.Path }

// Fields names the fields of a token response. An empty field means
// the usual spellings: access_token/accessToken, refresh_token/refreshToken,
// expires_in/expiresIn, token_type/tokenType.
type Fields struct {
	AccessToken, RefreshToken, ExpiresIn, TokenType string
}

// ParseResponse reads a token endpoint's answer, JSON or the
// form-encoded answer some OAuth servers still Send, into an undated Token.
func ParseResponse(data []byte, contentType string, f Fields) (*authrefresh.Token, error) {
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
	access, err := String(fields, f.AccessToken, "access_token", "accessToken")
	if err != nil {
		return nil, err
	}
	if access == "" {
		return nil, errors.New("token response has no access token")
	}
	refresh, err := String(fields, f.RefreshToken, "refresh_token", "refreshToken")
	if err != nil {
		return nil, err
	}
	tokenType, err := String(fields, f.TokenType, "token_type", "tokenType")
	if err != nil {
		return nil, err
	}
	expiresIn, err := Seconds(fields, f.ExpiresIn, "expires_in", "expiresIn")
	if err != nil {
		return nil, err
	}
	tok := &authrefresh.Token{AccessToken: access, RefreshToken: refresh, TokenType: tokenType, ExpiresIn: expiresIn}
	if tok.Scope, err = String(fields, "scope"); err != nil {
		return nil, err
	}
	if tok.IDToken, err = String(fields, "id_token"); err != nil {
		return nil, err
	}
	if tok.RefreshExpiresIn, err = Seconds(fields, "refresh_expires_in"); err != nil {
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

func String(fields map[string]json.RawMessage, name string, defaults ...string) (string, error) {
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

// Seconds accepts a number or a numeric string; RFC 6749 says number,
// some servers Send "3600".
func Seconds(fields map[string]json.RawMessage, name string, defaults ...string) (time.Duration, error) {
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

// This is the one place that decides what a failed token-endpoint call
// means. Every refresher and login helper goes through it.

// codeKinds are the RFC 6749 §5.2 (and extension) error codes whose meaning
// does not depend on the status they came with.
var codeKinds = map[string]authrefresh.RefreshKind{
	"invalid_grant":           authrefresh.RefreshRejected,  // the refresh token is dead: used, revoked or expired
	"temporarily_unavailable": authrefresh.RefreshTransient, // RFC 6749 §4.1.2.1, sent by some servers with 400
	"server_error":            authrefresh.RefreshTransient,
	"slow_down":               authrefresh.RefreshTransient, // RFC 8628 §3.5
	"use_dpop_nonce":          authrefresh.RefreshTransient, // RFC 9449 §8: retry with the nonce; the grant is fine
	// A well-formed refresh is never an invalid request: servers use it for
	// their own trouble (Ory Hydra: "multiple concurrent requests using the
	// same token. Please retry the request."). Only invalid_grant says the
	// refresh token is dead; ending a live session on anything else loses it.
	"invalid_request": authrefresh.RefreshTransient,
	// The client, not the token: keep the token, fix the configuration.
	"invalid_client":         authrefresh.RefreshMisconfigured,
	"unauthorized_client":    authrefresh.RefreshMisconfigured,
	"unsupported_grant_type": authrefresh.RefreshMisconfigured,
	"invalid_scope":          authrefresh.RefreshMisconfigured,
	"invalid_target":         authrefresh.RefreshMisconfigured, // RFC 8707: an audience or resource the server does not serve
}

// statusKind is the kind of a status whose body named no code of codeKinds:
// 400, 401 and 403 refuse the grant (or the client) and end the session;
// anything else (429, 5xx, an odd 404 from a misrouted proxy) may pass.
func statusKind(status int) authrefresh.RefreshKind {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return authrefresh.RefreshRejected
	}
	return authrefresh.RefreshTransient
}

// Kind is the table: the code decides when it is one we know, else the status.
func Kind(status int, code string) authrefresh.RefreshKind {
	if k, ok := codeKinds[code]; ok {
		return k
	}
	return statusKind(status)
}

// Refusal is the *RefreshError of a non-2xx token-endpoint answer.
func Refusal(op string, status int, header http.Header, body []byte) *authrefresh.RefreshError {
	e := &authrefresh.RefreshError{Op: op, StatusCode: status}
	var oauthErr struct {
		Error       any    `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	if json.Unmarshal(body, &oauthErr) == nil {
		if code, ok := oauthErr.Error.(string); ok {
			e.Code = safetext.Clip(code, 100)
		}
		e.Description = safetext.Clip(cmp.Or(oauthErr.Description, oauthErr.Message), 300)
	}
	e.Kind = Kind(status, e.Code)
	e.RetryAfter = RetryAfter(header.Get("Retry-After"), time.Now())
	return e
}

// RetryAfter reads Retry-After as seconds or an HTTP date, capped at a day.
func RetryAfter(v string, now time.Time) time.Duration {
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

// Random is n random bytes, base64url: a login's state and nonce.
// (The PKCE verifier and challenge are x/oauth2's GenerateVerifier and
// S256ChallengeFromVerifier.)
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// WithOp names the operation of a *RefreshError made before it was known.
func WithOp(err error, op string) error {
	if re, ok := err.(*authrefresh.RefreshError); ok && re.Op == "" {
		re.Op = op
	}
	return err
}

// Cancelled is the error of a caller whose context ended while it waited.
func Cancelled(ctx context.Context) error {
	return &authrefresh.RefreshError{Kind: authrefresh.RefreshCancelled, Err: context.Cause(ctx)}
}

// Revoke sends a revocation and accepts any 2xx.
func Revoke(ctx context.Context, hc *http.Client, req *http.Request) error {
	data, resp, err := Send(ctx, "revoke", hc, req)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return Refusal("revoke", resp.StatusCode, resp.Header, data)
	}
	return nil
}
