package main

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/oauth"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/redis/go-redis/v9"
)

// bffApp is the demo's app: the articles' product screens, done the BFF
// way (no token, no interceptor, no storage code).
//
//go:embed bffapp
var bffApp embed.FS

// runBFF: authrefresh bff — a backend-for-frontend in front of a
// single-page app and its APIs, on one origin.
func runBFF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bff", `Serve a single-page app and its APIs on one origin, logging its users in at an OpenID
provider and keeping their tokens on the server: the browser holds only an HttpOnly
session cookie. The app links to /bff/login?returnUrl=/path, asks GET /bff/user who is
logged in, POSTs /bff/logout, and calls each --api prefix with the header X-CSRF: 1;
the BFF attaches the user's token, refreshed ahead, one refresh per user. A call
without a session is answered 401 JSON, never a redirect. The client's redirect URI
is URL/bff/callback. With --demo it runs the reference server too, and the articles'
product app, in one command.`, `  authrefresh bff --demo          # the app on http://127.0.0.1:3000, the reference server beside it
  authrefresh bff --issuer https://id.example.com --client-id app --client-secret-file ~/.app-secret \
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
	sessions := fs.String("sessions", "", "a directory (0700) to keep the sessions and their tokens in, one 0600 file each: a restarted\nBFF keeps them (default: "+filepath.Join("$AUTHREFRESH_CONFIG_DIR", "bff-sessions")+"; with --demo, memory)")
	redisURL := fs.String("redis", "", "keep the sessions in Redis instead (redis://host:6379/0): replicas of the BFF share them")
	keyring := fs.String("seal-key", "", "seal the stored tokens with these keys: a 0600 file (make one with: authrefresh seal-key FILE),\nor env for the keys in $"+keyringEnv)
	demo := fs.Bool("demo", false, "run the reference server in this process (it approves the demo user at once) and serve the\nproducts app through the BFF: the defaults of every other flag point at them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var demoSecret string
	if *demo {
		demoCtx, stopDemo := context.WithCancel(ctx)
		issuerURL, stopped, err := startDemoProvider(demoCtx, stderr)
		if err != nil {
			stopDemo()
			return err
		}
		defer func() { stopDemo(); <-stopped }()
		*issuer, *clientID, demoSecret = cmp.Or(*issuer, issuerURL), cmp.Or(*clientID, authserver.DemoClientID), authserver.DemoClientSecret
		*origin = cmp.Or(*origin, "http://127.0.0.1:3000")
		if len(apis) == 0 {
			apis = listFlag{"/api/=" + issuerURL + "/api/v1/"}
		}
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
	client := oauth.Config{ClientID: *clientID, ClientSecret: demoSecret, Scopes: strings.Fields(strings.ReplaceAll(*scope, ",", " "))}
	if *secretFile != "" {
		secret, err := readSecret("--client-secret-file", *secretFile, 1, "put the client secret in it")
		if err != nil {
			return err
		}
		client.ClientSecret = string(secret)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A session's records outlive its absolute lifetime by an hour at most:
	// Redis expires them, the directory is swept.
	store, closeStore, err := bffStore(ctx, *sessions, *redisURL, *keyring, *demo, *maxAge+time.Hour, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	md, err := oauth.Discover(ctx, nil, *issuer)
	if err != nil {
		return err
	}
	cfg := bff.Config{Provider: md, Client: client, URL: *origin, APIs: routes, IdleTimeout: *idle, MaxAge: *maxAge, Logger: logger, Store: store}
	if *demo && *static == "" {
		app, _ := iofs.Sub(bffApp, "bffapp")
		cfg.Static = http.FileServerFS(app)
	}
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

// bffStore is where the BFF keeps its sessions: the files of dir (by
// default one under the configuration directory), or Redis, sealed with
// the keys of keyring when given; memory for the demo unless told. What
// was not saved for keep is forgotten: Redis expires it, and the
// directory is swept at start and every hour until ctx ends (the returned
// function stops the sweeping).
func bffStore(ctx context.Context, dir, redisURL, keyring string, demo bool, keep time.Duration, log *slog.Logger) (func(key string) authrefresh.Store, func(), error) {
	if dir != "" && redisURL != "" {
		return nil, nil, usageError{"bff: --sessions and --redis each keep the sessions; choose one"}
	}
	p := &profile{}
	if err := p.useKeyring(keyring); err != nil {
		return nil, nil, err
	}
	keys, _ := p.openKeyring()
	if redisURL != "" {
		opts, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, nil, usageError{fmt.Sprintf("--redis: %v", err)}
		}
		redis.SetLogger(quietRedis{})
		rdb := redis.NewClient(opts)
		if keys == nil {
			log.Warn("authrefresh bff: the sessions' tokens are kept in Redis unsealed; use --seal-key")
		}
		return func(key string) authrefresh.Store {
			s := redisstore.New(rdb, "bff:"+key)
			s.Keyring, s.Expire = keys, keep
			return s
		}, func() { rdb.Close() }, nil
	}
	if dir == "" && demo {
		return nil, func() {}, nil
	}
	if dir == "" {
		cd, err := configDir()
		if err != nil {
			return nil, nil, err
		}
		dir = filepath.Join(cd, "bff-sessions")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if keys == nil {
		log.Warn("authrefresh bff: the sessions' tokens are kept unsealed (0600 files); use --seal-key", "dir", dir)
	}
	sweepOnce(dir, keep, log)
	sweepCtx, stop := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		sweepSessions(sweepCtx, dir, keep, log)
	}()
	return func(key string) authrefresh.Store {
		return &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName(key)), Keyring: keys}
	}, func() { stop(); <-swept }, nil
}

// sweepSessions removes from dir the records not saved for keep, every
// hour until ctx ends.
func sweepSessions(ctx context.Context, dir string, keep time.Duration, log *slog.Logger) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sweepOnce(dir, keep, log)
	}
}

// sweepOnce removes from dir the records not saved for keep.
func sweepOnce(dir string, keep time.Duration, log *slog.Logger) {
	if n, err := filestore.Sweep(dir, time.Now().Add(-keep)); err != nil {
		log.Warn("authrefresh bff: sweeping the sessions' directory", "err", err)
	} else if n > 0 {
		log.Info("authrefresh bff: swept the records of ended sessions", "removed", n)
	}
}

// startDemoProvider runs the reference server on a free loopback port for
// the life of ctx, approving the demo user's logins at once, and returns
// its issuer and a channel closed once it has stopped.
func startDemoProvider(ctx context.Context, stderr io.Writer) (string, <-chan struct{}, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	issuer := "http://" + ln.Addr().String()
	srv, err := authserver.New(authserver.Config{Issuer: issuer, AutoApproveUser: authserver.DemoUser,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = serveUntilDone(ctx, ln, srv) }()
	return issuer, stopped, nil
}
