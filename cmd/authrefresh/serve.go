package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
)

// userFlags collects repeated --user name:password flags.
type userFlags map[string]string

func (u userFlags) String() string { return fmt.Sprintf("%d users", len(u)) }

func (u userFlags) Set(v string) error {
	name, pw, ok := strings.Cut(v, ":")
	if !ok || name == "" || pw == "" {
		return errors.New("want name:password")
	}
	u[name] = pw
	return nil
}

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Run the reference auth server: JSON login/refresh/logout, RFC 6749 /oauth/token,\nRFC 7009 revocation, JWKS, RFC 8414 metadata and the protected demo API /api/v1/data.\nBrowser login (/oauth/authorize, PKCE) approves --approve-user without asking; device\nlogin codes are approved with --control: POST /_control/device {\"user_code\", \"user\"}.", `  authrefresh serve
  authrefresh serve --access-ttl 5s --grace 2s --cors-origin http://localhost:3000
  authrefresh serve --addr 127.0.0.1:9090 --user alice:s3cret --expired-status 403
`, stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	accessTTL := fs.Duration("access-ttl", 30*time.Second, "access token lifetime (down to 1s)")
	refreshTTL := fs.Duration("refresh-ttl", 24*time.Hour, "absolute refresh token lifetime, from login")
	noRotation := fs.Bool("no-rotation", false, "keep the same refresh token on refresh (disables reuse detection)")
	grace := fs.Duration("grace", 0, "rotation grace period: the previous refresh token may be replayed this long")
	expiredStatus := fs.Int("expired-status", 401, "status for an expired or invalid access token: 401 or 403")
	alg := fs.String("alg", "EdDSA", "access token signature: EdDSA, ES256 or RS256")
	approve := fs.String("approve-user", authserver.DemoUser, "the user a browser login (/oauth/authorize) logs in without asking; empty: deny every one")
	control := fs.Bool("control", false, "expose test-double controls (faults, counters) under /_control/ — never in production")
	users := userFlags{}
	fs.Var(users, "user", "a user as name:password (repeatable; default: the demo user)")
	var origins listFlag
	fs.Var(&origins, "cors-origin", "browser origin allowed by CORS (repeatable, * for any)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *expiredStatus != 401 && *expiredStatus != 403 {
		return usageError{"--expired-status must be 401 or 403"}
	}
	if *accessTTL < time.Second {
		return usageError{"--access-ttl must be at least 1s"}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(*addr); host == "" || net.ParseIP(host).IsUnspecified() {
		fmt.Fprintf(stderr, "warning: --addr %s listens on every network interface: anyone who can reach this machine can log in to this test server. Use 127.0.0.1:PORT to stay local.\n", *addr)
	}
	cfg := authserver.Config{
		Issuer: "http://" + ln.Addr().String(), AccessTTL: *accessTTL, RefreshTTL: *refreshTTL,
		DisableRotation: *noRotation, GracePeriod: *grace, ExpiredStatus: *expiredStatus, Algorithm: *alg,
		AllowedOrigins: origins, EnableControlAPI: *control, AutoApproveUser: *approve,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if len(users) > 0 {
		cfg.Users = users
	}
	if _, known := users[*approve]; *approve != "" && len(users) > 0 && !known {
		return usageError{fmt.Sprintf("--approve-user %q is not one of the --user users", *approve)}
	}
	srv, err := authserver.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	printServeBanner(stdout, cfg, len(users) == 0)
	return serveUntilDone(ctx, ln, srv)
}

func printServeBanner(w io.Writer, cfg authserver.Config, demoUser bool) {
	base := cfg.Issuer
	fmt.Fprintf(w, "authrefresh reference server on %s\n\n", base)
	for _, e := range []string{
		"POST /auth/login              {\"username\",\"password\"} → tokens",
		"POST /auth/refresh            {\"refresh_token\"} → rotated tokens",
		"POST /auth/logout             {\"refresh_token\"} → revokes the family",
		"POST /oauth/token             RFC 6749: password, refresh_token, client_credentials",
		"POST /oauth/revoke            RFC 7009",
		"GET  /.well-known/jwks.json",
		"GET  /.well-known/oauth-authorization-server",
		"GET|POST /api/v1/data         protected demo API (products)",
		"GET  /api/v1/me",
	} {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if cfg.EnableControlAPI {
		fmt.Fprintln(w, "  GET /_control/counters, POST /_control/faults, POST /_control/revoke-access-tokens")
	}
	fmt.Fprintf(w, "\naccess tokens live %s; refresh tokens %s (absolute); rotation %v; grace %s; expired token → %d\n",
		cfg.AccessTTL, cfg.RefreshTTL, !cfg.DisableRotation, cfg.GracePeriod, cfg.ExpiredStatus)
	if demoUser {
		fmt.Fprintf(w, "demo user: %s / %s   OAuth client: %s / %s\n", authserver.DemoUser, authserver.DemoPassword, authserver.DemoClientID, authserver.DemoClientSecret)
	}
	fmt.Fprintf(w, "\ntry: curl -s -X POST %s/auth/login -d '{\"username\":\"%s\",\"password\":\"%s\"}'\n", base, authserver.DemoUser, authserver.DemoPassword)
}

// serveUntilDone serves on ln until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

var _ flag.Value = userFlags{}
