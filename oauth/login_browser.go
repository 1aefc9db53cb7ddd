package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
)

// BrowserLogin logs a user in through their browser: the authorization code
// grant with PKCE (S256, RFC 7636) and a loopback redirect (RFC 8252 §7.3),
// as command-line tools do. Login listens on 127.0.0.1, hands the
// authorization URL to Open, waits for the browser to come back with a code,
// checks the state (and, for OpenID, the nonce and issuer), exchanges the
// code and returns the token for Session.Login.
type BrowserLogin struct {
	// Client is the OAuth2 client: its TokenURL, ClientID, client
	// authentication and Scopes are used for the code exchange. The same
	// value is the Session's Refresher afterwards. Required.
	Client *Config
	// AuthURL is the authorization endpoint
	// (ProviderMetadata.AuthorizationEndpoint). Required.
	AuthURL string
	// RedirectURL is the redirect URI registered for the client. "" means
	// http://127.0.0.1:PORT/callback on a free port: a provider must accept
	// any port for a loopback redirect (RFC 8252 §7.3). A port or path in it
	// is kept; its host must be 127.0.0.1, [::1] or localhost (listened on
	// as 127.0.0.1).
	RedirectURL string
	// Params are more parameters of the authorization request: "audience",
	// "prompt", "login_hint", "resource".
	Params url.Values
	// Issuer, if set, must be the "iss" of the redirect (RFC 9207) and of the
	// ID token, when they have one: a code from another provider is refused.
	Issuer string
	// Open shows the user the authorization URL: opens their browser, or
	// prints the URL for them to open. It should not block until the login
	// ends. Required.
	//
	// Keep the URL where only the user can read it: its state and PKCE
	// challenge let whoever has them finish the login with their own
	// account and have this program keep their token. A command line is
	// readable by every local user; the authrefresh command hands the
	// browser a private page (0600) that forwards to the URL instead.
	Open func(ctx context.Context, authURL string) error
	// Timeout bounds the wait for the browser to come back; 0 means 5
	// minutes.
	Timeout time.Duration
}

// Login runs the flow. It fails with an *AuthorizationError when the
// provider or the user refused, the redirect did not match what was sent, or
// no one came back in time; with a *RefreshError (Op "login") when the code
// exchange failed.
func (b *BrowserLogin) Login(ctx context.Context) (*authrefresh.Token, error) {
	client, err := userClient("browser", b.Client)
	if err != nil {
		return nil, err
	}
	if b.Open == nil {
		return nil, errors.New("authrefresh: BrowserLogin.Open is nil: set it to open a browser or print the URL")
	}
	authURL, err := url.Parse(b.AuthURL)
	if err != nil || (authURL.Scheme != "https" && authURL.Scheme != "http") || authURL.Host == "" {
		return nil, errors.New("authrefresh: BrowserLogin.AuthURL is not an http(s) URL")
	}
	ln, redirect, err := listenLoopback(b.RedirectURL)
	if err != nil {
		return nil, err
	}
	req := NewAuthorizationRequest(client, b.AuthURL, redirect.String())
	req.Issuer, req.Params = b.Issuer, b.Params
	f := &browserFlow{req: req, redirect: redirect, done: make(chan struct{})}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() {
		// Shutdown, not Close: the handler that decided the login may still
		// be writing its page to the browser; Close would cut it off.
		done, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(done)
		_ = srv.Close()
		<-served
	}()

	ctx, cancel := context.WithTimeout(ctx, cmp.Or(b.Timeout, 5*time.Minute))
	defer cancel()
	f.ctx = ctx
	if err := b.Open(ctx, req.URL()); err != nil {
		return nil, fmt.Errorf("authrefresh: browser login: opening the authorization URL: %w", err)
	}
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		f.finish(nil, nil) // a late redirect finds the flow over
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &AuthorizationError{Flow: "browser", Code: "timeout", Description: "no answer from the browser in time; open the URL and log in, or try again"}
		}
		return nil, tokenhttp.WithOp(tokenhttp.Cancelled(ctx), "login")
	}
}

// listenLoopback listens where redirect says, or on a free port of
// 127.0.0.1, and returns the redirect URI to send.
func listenLoopback(redirect string) (net.Listener, *url.URL, error) {
	if redirect == "" {
		redirect = "http://127.0.0.1/callback"
	}
	u, err := url.Parse(redirect)
	if err != nil || u.Scheme != "http" || u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, errors.New("authrefresh: BrowserLogin.RedirectURL must be http://127.0.0.1[:PORT]/PATH, without a query")
	}
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1" // RFC 8252 §8.3: never rely on name resolution
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, nil, fmt.Errorf("authrefresh: BrowserLogin.RedirectURL host %q is not a loopback address (127.0.0.1, [::1] or localhost)", u.Hostname())
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, cmp.Or(u.Port(), "0")))
	if err != nil {
		return nil, nil, fmt.Errorf("authrefresh: browser login: listening for the redirect: %w", err)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return ln, u, nil
}

// browserFlow is one login in progress: it serves the redirect.
type browserFlow struct {
	req      *AuthorizationRequest
	redirect *url.URL
	ctx      context.Context
	once     sync.Once
	done     chan struct{}
	tok      *authrefresh.Token
	err      error
}

// finish records the flow's outcome, once.
func (f *browserFlow) finish(tok *authrefresh.Token, err error) bool {
	first := false
	f.once.Do(func() {
		f.tok, f.err, first = tok, err, true
		close(f.done)
	})
	return first
}

// ServeHTTP serves the redirect: the first request to the redirect path
// with this login's state decides the login; the page tells the user how it
// went.
func (f *browserFlow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != f.redirect.Path || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	select {
	case <-f.done:
		page(w, http.StatusGone, "This login is over", "Go back to the terminal.")
		return
	default:
	}
	q := r.URL.Query()
	if q.Get("state") != f.req.State {
		// Any local process can reach this listener: a redirect without
		// this login's state is answered and ignored, and the login goes
		// on waiting for its own until the timeout.
		page(w, http.StatusBadRequest, "Not this login's redirect", "This page does not carry the state of the login in progress. Go back to the terminal.")
		return
	}
	tok, err := f.req.Complete(f.ctx, q)
	if !f.finish(tok, err) {
		page(w, http.StatusGone, "This login is over", "Go back to the terminal.")
		return
	}
	if err != nil {
		page(w, http.StatusBadRequest, "Login failed", strings.TrimPrefix(err.Error(), "authrefresh: ")+"\nGo back to the terminal.")
		return
	}
	page(w, http.StatusOK, "Logged in", "You can close this window and go back to the terminal.")
}

// page writes the small HTML page the browser shows after the redirect.
func page(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>%s</title><body style="font-family:sans-serif;max-width:36em;margin:4em auto"><h1>%s</h1><p style="white-space:pre-line">%s</p>`,
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(text))
}
