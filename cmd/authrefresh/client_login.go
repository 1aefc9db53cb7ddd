package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"html"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/oauth"
)

// clientGrant is a profile's OAuth2 provider settings: its endpoints, the
// client, and the flow that logs in — the client_credentials grant
// (machine to machine), or a user's browser, device or password login,
// whose refresh token the refresh_token grant renews. The secret and the
// key stay in their files; the profile names the files.
type clientGrant struct {
	// Flow is client-credentials ("" in profiles written before user
	// flows), browser, device or password.
	Flow          string   `json:"flow,omitempty"`
	Issuer        string   `json:"issuer,omitempty"`
	TokenURL      string   `json:"token_url"`
	RevocationURL string   `json:"revocation_url,omitempty"`
	AuthURL       string   `json:"authorization_url,omitempty"`
	DeviceURL     string   `json:"device_authorization_url,omitempty"`
	ClientID      string   `json:"client_id"`
	SecretFile    string   `json:"client_secret_file,omitempty"` // a 0600 file
	KeyFile       string   `json:"client_key_file,omitempty"`    // a 0600 PEM or JWK file, for private_key_jwt
	Scopes        []string `json:"scopes,omitempty"`
	Audience      string   `json:"audience,omitempty"`
	Auth          string   `json:"client_auth,omitempty"` // basic, post or private_key_jwt
	// DPoP binds the tokens to a key made at each login (RFC 9449),
	// kept with the token (sealed with it under a keyring).
	DPoP bool `json:"dpop,omitempty"`
}

// The flows of --flow.
const (
	flowClient   = "client-credentials"
	flowBrowser  = "browser"
	flowDevice   = "device"
	flowPassword = "password"
)

// machine reports a client-credentials profile.
func (g *clientGrant) machine() bool { return g.Flow == "" || g.Flow == flowClient }

// clientFlags are login's flags for a provider profile.
type clientFlags struct {
	issuer, tokenURL, id, secretFile, keyFile, scope, auth, flow, audience, redirect, username string
	noBrowser, pwStdin, dpop                                                                   bool
}

// client opens the grant's credentials (the secret or key files) and
// returns its OAuth2 client.
func (g *clientGrant) client() (*oauth.Config, error) {
	c := &oauth.Config{TokenURL: g.TokenURL, RevocationURL: g.RevocationURL, ClientID: g.ClientID, Scopes: g.Scopes}
	switch g.Auth {
	case "basic":
		c.ClientAuth = oauth.ClientAuthBasic
	case "post":
		c.ClientAuth = oauth.ClientAuthBody
	case "private_key_jwt":
		c.ClientAuth = oauth.ClientAuthPrivateKeyJWT
	}
	if g.SecretFile != "" {
		secret, err := readSecret("--client-secret-file", g.SecretFile, 1, "put the client secret in it")
		if err != nil {
			return nil, err
		}
		c.ClientSecret = string(secret)
	}
	if g.KeyFile != "" {
		data, err := readSecret("--client-key-file", g.KeyFile, 1, "put the client's private key in it (PEM or JWK)")
		if err != nil {
			return nil, err
		}
		if c.Key, err = parseClientKey(data); err != nil {
			return nil, usageError{"--client-key-file " + g.KeyFile + ": " + safetext.Message(err)}
		}
	}
	return c, nil
}

// params are the extra request parameters: the audience, if any.
func (g *clientGrant) params() url.Values {
	if g.Audience == "" {
		return nil
	}
	return url.Values{"audience": {g.Audience}}
}

// refresher is the profile's Refresher: ClientCredentials for a machine,
// the refresh_token grant for a user.
func (g *clientGrant) refresher() (authrefresh.Refresher, error) {
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	if !g.machine() {
		return c, nil
	}
	cc := &oauth.ClientCredentials{TokenURL: c.TokenURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		ClientAuth: c.ClientAuth, Key: c.Key, Scopes: c.Scopes, Params: g.params(), HTTPClient: c.HTTPClient}
	if g.DPoP {
		// A machine's next token is acquired anew: with a key of this
		// process, carried by the token like a user's.
		if cc.DPoP, err = oauth.NewDPoPKey(); err != nil {
			return nil, err
		}
	}
	return cc, nil
}

// clientProfile builds a provider profile from login's flags: the
// endpoints from --issuer's metadata (with the client authentication method
// the provider supports), or the token endpoint from --token-url; the flow
// from --flow, else client-credentials with a secret or key, else browser
// where there is a display to open one, else device.
func clientProfile(ctx context.Context, name string, f clientFlags, api string) (*profile, error) {
	if (f.issuer == "") == (f.tokenURL == "") {
		return nil, usageError{"login: with --client-id, give --issuer URL (discovered) or --token-url URL"}
	}
	if f.secretFile != "" && f.keyFile != "" {
		return nil, usageError{"login: give --client-secret-file or --client-key-file, not both"}
	}
	confidential := f.secretFile != "" || f.keyFile != ""
	g := &clientGrant{Flow: f.flow, Issuer: f.issuer, TokenURL: f.tokenURL, ClientID: f.id, Scopes: strings.Fields(strings.ReplaceAll(f.scope, ",", " ")), Auth: f.auth, Audience: f.audience, DPoP: f.dpop}
	base := f.tokenURL
	if f.issuer != "" {
		if u, err := url.Parse(f.issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, notHTTPURL("--issuer", f.issuer)
		}
		md, err := oauth.Discover(ctx, nil, f.issuer)
		if err != nil {
			return nil, err
		}
		g.TokenURL, g.RevocationURL, g.AuthURL, g.DeviceURL, base = md.TokenEndpoint, md.RevocationEndpoint, md.AuthorizationEndpoint, md.DeviceAuthorizationEndpoint, f.issuer
		if g.Auth == "" && f.secretFile != "" && md.ClientAuthFor(true) == oauth.ClientAuthBody {
			g.Auth = "post"
		}
		if f.dpop {
			key, err := oauth.NewDPoPKey()
			if err != nil {
				return nil, err
			}
			if err := md.CheckDPoPKey(key); err != nil {
				return nil, usageError{"login --dpop: " + safetext.Message(err)}
			}
		}
	}
	if g.Flow == "" {
		switch {
		case confidential:
			g.Flow = flowClient
		case g.AuthURL != "" && (hasDisplay() || g.DeviceURL == ""):
			g.Flow = flowBrowser
		case g.DeviceURL != "":
			g.Flow = flowDevice
		default:
			return nil, usageError{"login: the provider offers neither browser nor device login to discover; give --flow, or --client-secret-file for machine to machine"}
		}
	}
	switch {
	case g.Flow != flowClient && g.Flow != flowBrowser && g.Flow != flowDevice && g.Flow != flowPassword:
		return nil, usageError{fmt.Sprintf("login: --flow %q: use browser, device, client-credentials or password", g.Flow)}
	case g.Flow == flowClient && !confidential:
		return nil, usageError{"login: --flow client-credentials needs --client-secret-file FILE or --client-key-file FILE (private_key_jwt)"}
	case g.Flow == flowBrowser && g.AuthURL == "":
		return nil, usageError{"login: --flow browser needs --issuer of a provider with an authorization endpoint"}
	case g.Flow == flowDevice && g.DeviceURL == "":
		return nil, usageError{"login: --flow device needs --issuer of a provider with a device authorization endpoint (RFC 8628)"}
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
		return nil, notHTTPURL("--issuer", base)
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

// loginClient logs in with the profile's flow, which proves its settings,
// and keeps the token.
func loginClient(ctx context.Context, name string, p *profile, f clientFlags, in *bufio.Reader, stdin io.Reader, stderr io.Writer) error {
	g := p.Client
	c, err := g.client()
	if err != nil {
		return err
	}
	if g.DPoP {
		// A new login, a new key: it travels with the token it binds.
		if c.DPoP, err = oauth.NewDPoPKey(); err != nil {
			return err
		}
	}
	var tok *authrefresh.Token
	switch g.Flow {
	case flowClient:
		cc, _ := g.refresher()
		tok, err = cc.(authrefresh.Acquirer).Acquire(ctx)
	case flowBrowser:
		var closePage func() // removes the page that forwarded the browser
		b := &oauth.BrowserLogin{Client: c, AuthURL: g.AuthURL, RedirectURL: f.redirect, Params: g.params(), Issuer: g.Issuer,
			Open: func(_ context.Context, u string) error {
				if f.noBrowser {
					fmt.Fprintf(stderr, "to log in, open this URL:\n  %s\n", u)
					return nil
				}
				fmt.Fprintf(stderr, "log in in your browser; if it does not open, open this URL:\n  %s\n", u)
				done, err := openBrowser(u)
				closePage = done
				if err != nil {
					fmt.Fprintf(stderr, "(could not open a browser: %v)\n", err)
				}
				return nil
			}}
		tok, err = b.Login(ctx)
		if closePage != nil {
			closePage()
		}
	case flowDevice:
		d := &oauth.DeviceLogin{Client: c, DeviceAuthURL: g.DeviceURL, Params: g.params(),
			Show: func(_ context.Context, code oauth.DeviceCode) error {
				fmt.Fprintf(stderr, "to log in, open %s and enter the code %s", code.VerificationURI, code.UserCode)
				if code.VerificationURIComplete != "" {
					fmt.Fprintf(stderr, "\n  (or open %s)", code.VerificationURIComplete)
				}
				fmt.Fprintf(stderr, "\nwaiting for the approval (the code expires in %s)…\n", code.ExpiresIn.Round(time.Second))
				return nil
			}}
		tok, err = d.Login(ctx)
	case flowPassword:
		user, password, perr := promptCredentials(in, stdin, stderr, f.username, f.pwStdin)
		if perr != nil {
			return perr
		}
		p.Username = user
		tok, err = c.PasswordLogin(ctx, user, password)
	}
	if err != nil {
		return &loginError{url: g.TokenURL, err: err}
	}
	if err := keepLogin(ctx, name, p, tok); err != nil {
		return err
	}
	if g.machine() {
		fmt.Fprintf(stderr, "got a token from %s for client %s (profile %q); it is renewed before it expires\n", g.TokenURL, g.ClientID, name)
	} else {
		fmt.Fprintf(stderr, "logged in to %s (profile %q); the session is refreshed before it expires\n", cmp.Or(g.Issuer, g.TokenURL), name)
	}
	return nil
}

// hasDisplay reports whether a browser can be opened here: not over SSH
// without a forwarded display, not on a headless Linux.
func hasDisplay() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return os.Getenv("SSH_CONNECTION") == ""
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" || os.Getenv("BROWSER") != ""
}

// openBrowser opens u in the user's browser ($BROWSER, else the system's
// opener) without putting u where another local user can read it. An
// authorization URL carries the login's state and PKCE challenge: whoever
// has both can log in with their own account at the provider and deliver
// that code to our listener, and this program would keep their token (RFC
// 8252 §8.1 leaves this to the client). A command line is readable by every
// user (/proc/PID/cmdline, ps), so the browser is given a page in a private
// directory (0700, the page 0600) that forwards to u. done removes it when
// the login ends.
func openBrowser(u string) (done func(), err error) {
	dir, err := os.MkdirTemp("", "authrefresh-login-")
	if err != nil {
		return func() {}, err
	}
	done = func() { os.RemoveAll(dir) }
	page := filepath.Join(dir, "login.html")
	esc := html.EscapeString(u)
	content := `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">` +
		`<meta http-equiv="refresh" content="0;url=` + esc + `"><title>Log in</title>` +
		`<p><a href="` + esc + `">Continue to log in</a></p>`
	if err := os.WriteFile(page, []byte(content), 0o600); err != nil {
		done()
		return func() {}, err
	}
	path := filepath.ToSlash(page)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // C:/… on Windows
	}
	target := (&url.URL{Scheme: "file", Path: path}).String()
	var cmd *exec.Cmd
	switch browser := os.Getenv("BROWSER"); {
	case browser != "":
		cmd = exec.Command(browser, target)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", target)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", target)
	default:
		cmd = exec.Command("xdg-open", target)
	}
	if err := cmd.Start(); err != nil {
		done()
		return func() {}, err
	}
	go reapBrowser(cmd)
	return done, nil
}

// reapBrowser waits for the browser command to exit, to reap it; its
// outcome is the browser's.
func reapBrowser(cmd *exec.Cmd) { _ = cmd.Wait() }

// parseClientKey reads a private key file: a JWK (or a JWK Set of one) when
// it is JSON, else PEM.
func parseClientKey(data []byte) (*oauth.ClientKey, error) {
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "{") {
		return oauth.ParseClientKeyJWK([]byte(trimmed))
	}
	signer, err := oauth.ParseClientKeyPEM(data)
	if err != nil {
		return nil, err
	}
	return &oauth.ClientKey{Signer: signer}, nil
}

// localCredentials points a provider profile at this host's copies of its
// client secret or key file, if given: the paths saved at login are the
// login host's.
func (p *profile) localCredentials(secretFile, keyFile string) error {
	if secretFile == "" && keyFile == "" {
		return nil
	}
	if p.Client == nil {
		return usageError{"--provider-secret-file and --provider-key-file are for a profile logged in with --client-id"}
	}
	for _, f := range []struct {
		path string
		into *string
	}{{secretFile, &p.Client.SecretFile}, {keyFile, &p.Client.KeyFile}} {
		if f.path == "" {
			continue
		}
		abs, err := filepath.Abs(f.path)
		if err != nil {
			return err
		}
		*f.into = abs
	}
	return nil
}
