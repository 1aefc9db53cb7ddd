package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/authrefresh/authrefresh"
)

// clientGrant is a profile's machine-to-machine settings: the OAuth2
// client_credentials grant against any provider's token endpoint. The
// secret and the key stay in their files; the profile names the files.
type clientGrant struct {
	TokenURL   string   `json:"token_url"`
	ClientID   string   `json:"client_id"`
	SecretFile string   `json:"client_secret_file,omitempty"` // a 0600 file
	KeyFile    string   `json:"client_key_file,omitempty"`    // a 0600 PEM file, for private_key_jwt
	Scopes     []string `json:"scopes,omitempty"`
	Auth       string   `json:"client_auth,omitempty"` // basic, post or private_key_jwt
}

// clientFlags are login's flags for a client-credentials profile.
type clientFlags struct {
	issuer, tokenURL, id, secretFile, keyFile, scope, auth string
}

// refresher opens the grant's credentials (the secret or key files) and
// returns its ClientCredentials.
func (g *clientGrant) refresher() (*authrefresh.ClientCredentials, error) {
	cc := &authrefresh.ClientCredentials{TokenURL: g.TokenURL, ClientID: g.ClientID, Scopes: g.Scopes}
	switch g.Auth {
	case "basic":
		cc.ClientAuth = authrefresh.ClientAuthBasic
	case "post":
		cc.ClientAuth = authrefresh.ClientAuthBody
	case "private_key_jwt":
		cc.ClientAuth = authrefresh.ClientAuthPrivateKeyJWT
	}
	if g.SecretFile != "" {
		secret, err := readSecret("--client-secret-file", g.SecretFile, 1, "put the client secret in it")
		if err != nil {
			return nil, err
		}
		cc.ClientSecret = string(secret)
	}
	if g.KeyFile != "" {
		pem, err := readSecret("--client-key-file", g.KeyFile, 1, "put the client's private key in it (PEM)")
		if err != nil {
			return nil, err
		}
		signer, err := authrefresh.ParseClientKeyPEM(pem)
		if err != nil {
			return nil, usageError{"--client-key-file " + g.KeyFile + ": " + clean(err)}
		}
		cc.Key = &authrefresh.ClientKey{Signer: signer}
	}
	return cc, nil
}

// clientProfile builds a client-credentials profile from login's flags:
// the token endpoint from --token-url, or discovered from --issuer (with
// the client authentication method the provider supports).
func clientProfile(ctx context.Context, name string, f clientFlags, api string) (*profile, error) {
	if (f.issuer == "") == (f.tokenURL == "") {
		return nil, usageError{"login: with --client-id, give --issuer URL (discovered) or --token-url URL"}
	}
	if (f.secretFile == "") == (f.keyFile == "") {
		return nil, usageError{"login: with --client-id, give --client-secret-file FILE or --client-key-file FILE (private_key_jwt)"}
	}
	g := &clientGrant{TokenURL: f.tokenURL, ClientID: f.id, Scopes: strings.Fields(strings.ReplaceAll(f.scope, ",", " ")), Auth: f.auth}
	base := f.tokenURL
	if f.issuer != "" {
		md, err := authrefresh.Discover(ctx, nil, f.issuer)
		if err != nil {
			return nil, err
		}
		g.TokenURL, base = md.TokenEndpoint, f.issuer
		if g.Auth == "" && f.secretFile != "" && md.ClientAuthFor(true) == authrefresh.ClientAuthBody {
			g.Auth = "post"
		}
	}
	switch g.Auth {
	case "", "basic", "post", "private_key_jwt":
	default:
		return nil, usageError{fmt.Sprintf("login: --client-auth %q: use basic, post or private_key_jwt", g.Auth)}
	}
	for _, file := range []*string{&f.secretFile, &f.keyFile} {
		if *file != "" {
			abs, err := filepath.Abs(*file)
			if err != nil {
				return nil, err
			}
			*file = abs
		}
	}
	g.SecretFile, g.KeyFile = f.secretFile, f.keyFile
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("%q is not an http(s) URL", base)}
	}
	origin := u.Scheme + "://" + u.Host
	if api == "" {
		api = origin + "/"
	}
	dir, err := configDir()
	if err != nil {
		return nil, err
	}
	return &profile{URL: origin, API: api, TokenFile: filepath.Join(dir, name+".token.json"), Client: g}, nil
}

// loginClient acquires a first token for a client-credentials profile,
// which proves its settings, and keeps it.
func loginClient(ctx context.Context, name string, p *profile, stderr io.Writer) error {
	cc, err := p.Client.refresher()
	if err != nil {
		return err
	}
	tok, err := cc.Acquire(ctx)
	if err != nil {
		return &loginError{url: p.Client.TokenURL, err: err}
	}
	if err := keepLogin(ctx, name, p, tok); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "got a token from %s for client %s (profile %q); it is renewed before it expires\n", p.Client.TokenURL, p.Client.ClientID, name)
	return nil
}
