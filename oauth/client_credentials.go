package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
)

// ClientCredentials gets tokens for the client itself, machine to machine,
// with the client_credentials grant (RFC 6749 §4.4). As a Session's
// Refresher it needs no Login: the first Token acquires one, refresh-ahead
// acquires the next before expiry (one acquisition in flight, across
// processes too with a filestore.Store or redisstore), and a token the API
// refuses is replaced by a new one once. invalid_client and
// unauthorized_client are RefreshMisconfigured (a configuration to fix: the
// next attempt, after a backoff, uses the fixed one); a network failure or
// a 5xx is transient, with backoff.
//
// Sessions of different configurations must not share a store: name the
// store with StoreKey, which differs whenever the token would.
type ClientCredentials struct {
	// TokenURL is the token endpoint (ProviderMetadata.TokenEndpoint).
	// Required.
	TokenURL string
	// ClientID and ClientSecret identify the client.
	ClientID, ClientSecret string
	// ClientAuth chooses HTTP Basic, body or private_key_jwt client
	// authentication (ProviderMetadata.ClientAuthFor chooses for a
	// discovered server).
	ClientAuth ClientAuth
	// Key signs private_key_jwt client assertions, instead of a secret.
	Key *ClientKey
	// DPoP, if set, binds the tokens to this key (RFC 9449), as
	// Config.DPoP does: a proof on every token request, and on every
	// request a Transport sends with a bound token.
	DPoP *DPoPKey
	// Scopes are requested, space-separated in "scope".
	Scopes []string
	// Params are more form fields for the token request: "audience"
	// (Auth0), "resource" (RFC 8707), repeated as needed.
	Params url.Values
	// HTTPClient sends the request; nil means a private client with a 30s
	// timeout. Redirects are never followed, whatever its CheckRedirect
	// says. It must not use the refreshing Transport.
	HTTPClient *http.Client
}

// config is the client as a Config.
func (c *ClientCredentials) config() *Config {
	return &Config{TokenURL: c.TokenURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret, ClientAuth: c.ClientAuth, Key: c.Key, DPoP: c.DPoP, HTTPClient: c.HTTPClient}
}

// Proof implements authrefresh.Prover, for tokens bound to DPoP.
func (c *ClientCredentials) Proof(tok *authrefresh.Token, method, target, nonce string, now time.Time) (string, error) {
	return c.config().Proof(tok, method, target, nonce, now)
}

// Acquire implements Acquirer: one token request.
func (c *ClientCredentials) Acquire(ctx context.Context) (*authrefresh.Token, error) {
	form := url.Values{}
	for k, vs := range c.Params {
		form[k] = append([]string(nil), vs...)
	}
	form.Set("grant_type", "client_credentials")
	if len(c.Scopes) > 0 {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	tok, err := c.config().token(ctx, "acquire", c.TokenURL, form, c.DPoP)
	if err != nil {
		return nil, err
	}
	tok.RefreshToken = "" // never used: the next token is acquired the same way
	return tok, nil
}

// Refresh implements Refresher: a client-credentials token is not
// refreshed but acquired anew.
func (c *ClientCredentials) Refresh(ctx context.Context, _ *authrefresh.Token) (*authrefresh.Token, error) {
	return c.Acquire(ctx)
}

// StoreKey names this configuration's token in a shared store (a filestore.Store
// named with KeyFileName, a redisstore session): it covers the token
// endpoint, the client, the scopes (in any order) and the params, so two
// configurations that would get different tokens never share one. It is a
// hash, and reveals none of them (the secret is not part of it: rotating
// a secret keeps the token).
func (c *ClientCredentials) StoreKey() string {
	scopes := slices.Clone(c.Scopes)
	slices.Sort(scopes)
	h := sha256.New()
	for _, part := range []string{c.TokenURL, c.ClientID, strings.Join(scopes, " "), url.Values(c.Params).Encode()} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "client-credentials-" + hex.EncodeToString(h.Sum(nil)[:16])
}
