package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
	"golang.org/x/oauth2"
)

// AuthorizationRequest is one authorization-code login in flight (RFC 6749
// §4.1, with PKCE): what was sent, so that the redirect coming back can be
// checked and its code exchanged. BrowserLogin makes one per login. A web
// server that logs its users in keeps one per login attempt, found again by
// its State when the browser comes back, and uses each once.
type AuthorizationRequest struct {
	// Client is the OAuth2 client: its ClientID, Scopes and DPoP key go
	// into the URL; it exchanges the code.
	Client *Config
	// AuthURL is the authorization endpoint.
	AuthURL string
	// RedirectURL is the redirect URI, as registered for the client.
	RedirectURL string
	// Issuer, if set, must be the "iss" of the redirect (RFC 9207) and of
	// the ID token, when they have one.
	Issuer string
	// Params are more parameters of the request ("prompt", "audience").
	Params url.Values
	// State, Nonce (for an OpenID scope) and Verifier (the PKCE code
	// verifier) are random, made by NewAuthorizationRequest. They are
	// secrets of the login: keep them server-side.
	State, Nonce, Verifier string
}

// NewAuthorizationRequest returns a request of client to authURL coming
// back to redirectURL, with a new state, PKCE verifier and (when the
// client's scopes hold "openid") nonce.
func NewAuthorizationRequest(client *Config, authURL, redirectURL string) *AuthorizationRequest {
	r := &AuthorizationRequest{Client: client, AuthURL: authURL, RedirectURL: redirectURL, State: tokenhttp.Random(16), Verifier: oauth2.GenerateVerifier()}
	if client != nil && slices.Contains(client.Scopes, "openid") {
		r.Nonce = tokenhttp.Random(16)
	}
	return r
}

// URL is where to send the user: the authorization endpoint with the
// request's parameters (response_type code, client_id, redirect_uri,
// state, the S256 code challenge, the client's scopes, the nonce, and
// dpop_jkt when the client has a DPoP key: RFC 9449 §10 binds the code to
// it).
func (r *AuthorizationRequest) URL() string {
	base, err := url.Parse(r.AuthURL)
	if err != nil {
		return r.AuthURL
	}
	q := base.Query()
	for k, vs := range r.Params {
		q[k] = append([]string(nil), vs...)
	}
	q.Set("response_type", "code")
	q.Set("client_id", r.Client.ClientID)
	q.Set("redirect_uri", r.RedirectURL)
	q.Set("state", r.State)
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(r.Verifier))
	q.Set("code_challenge_method", "S256")
	if len(r.Client.Scopes) > 0 {
		q.Set("scope", strings.Join(r.Client.Scopes, " "))
	}
	if r.Nonce != "" {
		q.Set("nonce", r.Nonce)
	}
	if r.Client.DPoP != nil {
		// RFC 9449 §10: the code is bound to the key, so that only a
		// proof by it can exchange the code.
		if jkt, err := r.Client.DPoP.Thumbprint(); err == nil {
			q.Set("dpop_jkt", jkt)
		}
	}
	u := *base
	u.RawQuery = q.Encode()
	return u.String()
}

// Complete checks the query of the redirect that came back (the state,
// the issuer, an error the provider sent) and exchanges its code, then
// checks the ID token's nonce, audience and issuer. It fails with an
// *AuthorizationError when the redirect is not this request's or the
// provider refused; with a *RefreshError (Op "login") when the exchange
// failed.
func (r *AuthorizationRequest) Complete(ctx context.Context, q url.Values) (*authrefresh.Token, error) {
	fail := func(code, desc string) error {
		return &AuthorizationError{Flow: "browser", Code: code, Description: desc}
	}
	if q.Get("state") != r.State {
		return nil, fail("state_mismatch", "the redirect does not carry this login's state (another login's, or a forged request); start again")
	}
	if iss := q.Get("iss"); iss != "" && r.Issuer != "" && iss != r.Issuer {
		return nil, fail("issuer_mismatch", fmt.Sprintf("the redirect comes from issuer %q, not %q", safetext.Clip(iss, 200), r.Issuer))
	}
	if code := q.Get("error"); code != "" {
		return nil, fail(safetext.Clip(code, 100), safetext.Clip(q.Get("error_description"), 300))
	}
	if q.Get("code") == "" {
		return nil, fail("invalid_request", "the redirect carries neither a code nor an error")
	}
	tok, err := r.Client.exchange(ctx, url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {r.RedirectURL}, "code_verifier": {r.Verifier},
	})
	if err != nil {
		return nil, err
	}
	if err := r.checkIDToken(tok.IDToken); err != nil {
		return nil, err
	}
	return tok, nil
}

// checkIDToken checks the ID token's nonce, audience and issuer. Its
// signature is not checked: it came straight from the token endpoint over
// the connection the client opened, which OpenID Connect Core §3.1.3.7
// accepts in place of the signature for these checks.
func (r *AuthorizationRequest) checkIDToken(idToken string) error {
	if idToken == "" {
		return nil
	}
	fail := func(code, desc string) error {
		return &AuthorizationError{Flow: "browser", Code: code, Description: desc}
	}
	parts := strings.Split(idToken, ".")
	var claims struct {
		Iss   string          `json:"iss"`
		Aud   json.RawMessage `json:"aud"`
		Nonce string          `json:"nonce"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[min(1, len(parts)-1)], "="))
	if len(parts) != 3 || err != nil || json.Unmarshal(raw, &claims) != nil {
		return fail("invalid_id_token", "the ID token is not a JWT")
	}
	var auds []string
	if json.Unmarshal(claims.Aud, &auds) != nil {
		var one string
		_ = json.Unmarshal(claims.Aud, &one)
		auds = []string{one}
	}
	switch {
	case r.Nonce != "" && claims.Nonce != r.Nonce:
		return fail("nonce_mismatch", "the ID token does not carry this login's nonce (a replayed or injected code); start again")
	case !slices.Contains(auds, r.Client.ClientID):
		return fail("invalid_id_token", "the ID token is not meant for this client")
	case r.Issuer != "" && claims.Iss != r.Issuer:
		return fail("issuer_mismatch", fmt.Sprintf("the ID token comes from issuer %q, not %q", safetext.Clip(claims.Iss, 200), r.Issuer))
	}
	return nil
}
