package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/oauth"
)

// runBFF: authrefresh bff — a backend-for-frontend in front of a
// single-page app and its APIs, on one origin.
func runBFF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bff", `Serve a single-page app and its APIs on one origin, logging its users in at an OpenID
provider and keeping their tokens on the server: the browser holds only an HttpOnly
session cookie. The app links to /bff/login?returnUrl=/path, asks GET /bff/user who is
logged in, POSTs /bff/logout, and calls each --api prefix with the header X-CSRF: 1;
the BFF attaches the user's token, refreshed ahead, one refresh per user. A call
without a session is answered 401 JSON, never a redirect. The client's redirect URI
is URL/bff/callback.`, `  authrefresh bff --issuer https://id.example.com --client-id app --client-secret-file ~/.app-secret \
      --url https://app.example.com --listen 127.0.0.1:8443 --api /api/=https://api.example.com/v1/ --static ./dist
  authrefresh bff --issuer http://127.0.0.1:8080 --client-id demo-client --client-secret-file secret \
      --url http://127.0.0.1:3000 --api /api/=http://127.0.0.1:8080/api/v1/ --static ./app   # with authrefresh serve
`, stderr)
	issuer := fs.String("issuer", "", "the OpenID provider's issuer URL: its endpoints are discovered (required)")
	clientID := fs.String("client-id", "", "the BFF's client at the provider (required)")
	secretFile := fs.String("client-secret-file", "", "a 0600 file holding the client secret (never an argument)")
	scope := fs.String("scope", "openid", "the scopes to ask for, space- or comma-separated (openid is always asked for)")
	origin := fs.String("url", "", "the BFF's origin as the browser sees it, e.g. https://app.example.com (required);\nplain http only on a loopback address, for development")
	listen := fs.String("listen", "", "the address to listen on (default: the --url's host and port)")
	var apis listFlag
	fs.Var(&apis, "api", "PREFIX=UPSTREAM: requests under PREFIX go to UPSTREAM with the user's token (repeatable)")
	static := fs.String("static", "", "a directory of the app's files, served for everything else")
	idle := fs.Duration("idle", 30*time.Minute, "end a session unused for this long")
	maxAge := fs.Duration("max-age", 12*time.Hour, "end a session this long after its login")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *issuer == "" || *clientID == "" || *origin == "" {
		return flagError(fs, "--issuer, --client-id and --url are required")
	}
	u, err := url.Parse(*origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return notHTTPURL("--url", *origin)
	}
	var routes []bff.API
	for _, a := range apis {
		prefix, upstream, ok := strings.Cut(a, "=")
		if !ok {
			return usageError{fmt.Sprintf("--api %q: want PREFIX=UPSTREAM, such as /api/=https://api.example.com/v1/", a)}
		}
		routes = append(routes, bff.API{Prefix: prefix, Upstream: upstream})
	}
	client := oauth.Config{ClientID: *clientID, Scopes: strings.Fields(strings.ReplaceAll(*scope, ",", " "))}
	if *secretFile != "" {
		secret, err := readSecret("--client-secret-file", *secretFile, 1, "put the client secret in it")
		if err != nil {
			return err
		}
		client.ClientSecret = string(secret)
	}
	md, err := oauth.Discover(ctx, nil, *issuer)
	if err != nil {
		return err
	}
	cfg := bff.Config{Provider: md, Client: client, URL: *origin, APIs: routes, IdleTimeout: *idle, MaxAge: *maxAge,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if *static != "" {
		if info, err := os.Stat(*static); err != nil || !info.IsDir() {
			return usageError{fmt.Sprintf("--static %s is not a directory", *static)}
		}
		cfg.Static = http.FileServer(http.Dir(*static))
	}
	app, err := bff.New(cfg)
	if err != nil {
		return usageError{"bff: " + safetext.Message(err)}
	}
	addr := *listen
	if addr == "" {
		addr = u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "authrefresh bff on %s (listening on %s): log in at %s/bff/login; the provider's redirect URI is %s/bff/callback\n",
		strings.TrimRight(*origin, "/"), ln.Addr(), strings.TrimRight(*origin, "/"), strings.TrimRight(*origin, "/"))
	return serveUntilDone(ctx, ln, app)
}
