package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
)

// ClientAuth says how a Config authenticates its client.
type ClientAuth int

const (
	// ClientAuthAuto uses HTTP Basic when there is a client secret, else
	// sends client_id in the body (a public client).
	ClientAuthAuto ClientAuth = iota
	// ClientAuthBasic sends the client id and secret with HTTP Basic (RFC 6749 §2.3.1).
	ClientAuthBasic
	// ClientAuthBody sends client_id and client_secret as form fields.
	ClientAuthBody
	// ClientAuthPrivateKeyJWT sends a client assertion signed with the
	// client's Key (private_key_jwt, RFC 7523); no secret. Chosen by
	// ClientAuthAuto when a Key is set.
	ClientAuthPrivateKeyJWT
)

// Config refreshes with the RFC 6749 §6 refresh_token grant: a form
// POST to the token endpoint, errors read as RFC 6749 §5.2.
type Config struct {
	// TokenURL is the token endpoint. Required.
	TokenURL string
	// ClientID and ClientSecret identify the client; both may be empty.
	ClientID, ClientSecret string
	// ClientAuth chooses Basic, body or private_key_jwt client
	// authentication.
	ClientAuth ClientAuth
	// Key signs private_key_jwt client assertions (see ClientKey).
	Key *ClientKey
	// DPoP, if set, binds the tokens to this key (RFC 9449): every
	// token-endpoint call carries a proof signed by it, and so does every
	// request a Transport sends with a token the server bound ("token_type":
	// "DPoP"; the Config is the Session's Prover). A key in memory
	// (NewDPoPKey) is stored with the token it binds (Token.DPoPKey), so
	// every process sharing the store refreshes with it; make a new one for
	// each login. A key that cannot be written out (a KMS or HSM Signer)
	// must be set, the same, in every process.
	DPoP *DPoPKey
	// Scopes, if any, are requested (they may only narrow the original grant).
	Scopes []string
	// RevocationURL, if set, is used by Session.Logout (RFC 7009).
	RevocationURL string
	// HTTPClient sends the request; nil means a private client with a 30s
	// timeout. Redirects are never followed, whatever its CheckRedirect says.
	// It must not use the refreshing Transport.
	HTTPClient *http.Client
}

// Refresh implements Refresher.
func (r *Config) Refresh(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
	if tok.RefreshToken == "" {
		return nil, authrefresh.Rejected(errors.New("no refresh token"))
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	if len(r.Scopes) > 0 {
		form.Set("scope", strings.Join(r.Scopes, " "))
	}
	key, err := r.keyFor(tok)
	if err != nil {
		return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshMisconfigured, Err: err}
	}
	return r.token(ctx, "refresh", r.TokenURL, form, key)
}

// Revoke implements Revoker (RFC 7009) when RevocationURL is set.
func (r *Config) Revoke(ctx context.Context, tok *authrefresh.Token) error {
	if r.RevocationURL == "" || tok.RefreshToken == "" {
		return nil
	}
	form := url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}
	key, err := r.keyFor(tok)
	if err != nil {
		return &authrefresh.RefreshError{Kind: authrefresh.RefreshMisconfigured, Op: "revoke", Err: err}
	}
	data, resp, err := r.post(ctx, "revoke", r.RevocationURL, form, key)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return r.refusal("revoke", resp, data, key)
	}
	return nil
}

// request is a form POST to endpoint with the client's authentication. Its
// error is a *RefreshError of kind RefreshMisconfigured: the settings
// cannot make a request.
func (r *Config) request(ctx context.Context, endpoint string, form url.Values) (*http.Request, error) {
	assert := r.ClientAuth == ClientAuthPrivateKeyJWT || (r.ClientAuth == ClientAuthAuto && r.Key != nil)
	basic := !assert && (r.ClientAuth == ClientAuthBasic || (r.ClientAuth == ClientAuthAuto && r.ClientSecret != ""))
	switch {
	case assert:
		jwt, err := r.Key.assertion(r.ClientID, endpoint, time.Now())
		if err != nil {
			// A key that cannot sign its algorithm is a setting to fix, as
			// a wrong secret is: never a reason to end the session.
			return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshMisconfigured, Err: err}
		}
		form.Set("client_id", r.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", jwt)
	case !basic:
		if r.ClientID != "" {
			form.Set("client_id", r.ClientID)
		}
		if r.ClientSecret != "" {
			form.Set("client_secret", r.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshMisconfigured, Err: errors.New("invalid token endpoint URL")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 §2.3.1: form-encode both before Basic.
		req.SetBasicAuth(url.QueryEscape(r.ClientID), url.QueryEscape(r.ClientSecret))
	}
	return req, nil
}

// PasswordLogin logs a user in with the resource owner password grant (RFC
// 6749 §4.3), with the client's authentication and Scopes, and returns the
// token for Session.Login. Many providers disable this grant (RFC 9700
// §2.4 advises against it); prefer BrowserLogin or DeviceLogin where they
// do. A wrong password is a *RefreshError of kind RefreshRejected with Op
// "login".
func (r *Config) PasswordLogin(ctx context.Context, username, password string) (*authrefresh.Token, error) {
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	if len(r.Scopes) > 0 {
		form.Set("scope", strings.Join(r.Scopes, " "))
	}
	return r.exchange(ctx, form)
}

// userClient checks the client of a user login and returns it.
func userClient(flow string, c *Config) (*Config, error) {
	if c == nil || c.TokenURL == "" || c.ClientID == "" {
		return nil, fmt.Errorf("authrefresh: %s login needs Client with TokenURL and ClientID", flow)
	}
	return c, nil
}

// exchange posts a grant to the client's token endpoint, with its client
// authentication, for a login.
func (c *Config) exchange(ctx context.Context, form url.Values) (*authrefresh.Token, error) {
	return c.token(ctx, "login", c.TokenURL, form, c.DPoP)
}
