package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh"
)

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("proxy", "A sidecar: requests to --listen are forwarded to --upstream with the profile's token,\nrefreshed ahead and replayed after a refusal, so any program (curl, a legacy app)\ncalls the API authenticated. Incoming Authorization headers are replaced. Listens on\nloopback only unless --allow-remote: an open proxy that holds a token is a token leak.", `  authrefresh proxy --upstream http://127.0.0.1:8080
  curl http://127.0.0.1:9000/api/v1/me
  authrefresh proxy --listen 127.0.0.1:9001 --upstream https://api.example.com --profile prod
  authrefresh login --url http://127.0.0.1:8080 --username demo --redis redis://127.0.0.1:6379/0 --session orders
  authrefresh proxy --redis redis://127.0.0.1:6379/0 --session orders   # on every host: one session, one refresh
`, stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	upstream := fs.String("upstream", "", "upstream base URL (default: the profile's server)")
	name := fs.String("profile", "default", "profile name")
	allowRemote := fs.Bool("allow-remote", false, "allow listening on a non-loopback address")
	maxReplay := fs.Int64("max-replay-buffer", authrefresh.DefaultMaxReplayBuffer, "bytes of a streamed request body kept for a replay")
	redisURL := fs.String("redis", "", "share the session through Redis (redis://host:6379/0): any number of sidecars refresh once")
	redisSession := fs.String("session", "", "with --redis: the shared session's name (log in once with login --redis URL --session NAME)")
	quiet := fs.Bool("quiet", false, "no log line per request; failed ones (401, 5xx) are still logged")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLoopback(*listen, *allowRemote); err != nil {
		return err
	}
	p, err := loadProfile(*name)
	if err != nil {
		return err
	}
	hint := "log in again: " + (&profileError{name: *name, url: p.URL}).loginCommand()
	if err := p.useRedis(*redisURL, *redisSession); err != nil {
		return err
	}
	if *upstream == "" {
		*upstream = p.URL
	}
	target, err := url.Parse(*upstream)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return usageError{fmt.Sprintf("--upstream %q is not an http(s) URL", *upstream)}
	}
	session, closeStore, err := p.session()
	if err != nil {
		return err
	}
	defer closeStore()
	if _, err := session.Token(ctx); err != nil {
		return inProfile(*name, p, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	fmt.Fprintf(stdout, "authrefresh proxy on http://%s → %s (profile %q)\n", ln.Addr(), target, *name)
	return serveUntilDone(ctx, ln, newProxy(session, target, *maxReplay, logger, hint))
}

// checkLoopback refuses a non-loopback listen address unless allowed.
func checkLoopback(addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Sprintf("--listen %q: %v", addr, err)}
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usageError{fmt.Sprintf("--listen %s is not a loopback address; anyone who can reach it could use your token. Pass --allow-remote if you mean it", addr)}
}

// newProxy is the sidecar's handler: httputil.ReverseProxy with the
// authrefresh Transport limited to the upstream's origin.
//
// loginHint says how to log in again, in the answer and the log line of a
// request refused because the session ended.
func newProxy(session *authrefresh.Session, target *url.URL, maxReplay int64, logger *slog.Logger, loginHint string) http.Handler {
	// A sidecar talks to one upstream from many client connections: keep as
	// many upstream connections idle as it serves (the default keeps 2, so a
	// busy proxy would open a new connection for most requests).
	upstreamConns := http.DefaultTransport.(*http.Transport).Clone()
	upstreamConns.MaxIdleConns, upstreamConns.MaxIdleConnsPerHost = 1024, 1024
	transport := &authrefresh.Transport{Session: session, Base: upstreamConns, Origins: []string{target.Scheme + "://" + target.Host}, MaxReplayBuffer: maxReplay}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Del("Authorization") // the session's token replaces the caller's
			pr.Out.Header.Del("Cookie")        // nor does the caller's browser state travel upstream
			pr.Out.Host = target.Host
		},
		Transport:     transport,
		FlushInterval: -1,             // stream answers as they come
		BufferPool:    &copyBuffers{}, // else ReverseProxy allocates 32 KiB per answer
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status, code, desc := proxyStatus(err, loginHint)
			if status == http.StatusUnauthorized {
				logger.Warn("proxy: "+code, "error", err, "fix", loginHint)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status == http.StatusUnauthorized || rec.status >= 500 {
			level = slog.LevelWarn
		}
		logger.Log(r.Context(), level, "proxy", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(began).Round(time.Microsecond))
	})
}

// proxyStatus derives the sidecar's answer to a request it could not
// forward from the library's error kinds.
func proxyStatus(err error, loginHint string) (status int, code, description string) {
	msg := clean(err)
	switch {
	case errors.Is(err, authrefresh.ErrSessionExpired), errors.Is(err, authrefresh.ErrNotLoggedIn):
		return http.StatusUnauthorized, "session_expired", msg + "; " + loginHint
	case errors.Is(err, authrefresh.ErrBodyNotReplayable):
		return http.StatusUnauthorized, "body_not_replayable", msg
	case errors.Is(err, authrefresh.ErrFreshTokenRefused):
		return http.StatusUnauthorized, "token_refused", msg
	case errors.Is(err, authrefresh.ErrRefreshTransient):
		return http.StatusServiceUnavailable, "refresh_unavailable", msg
	case errors.Is(err, authrefresh.ErrRefreshCancelled), errors.Is(err, context.Canceled):
		return http.StatusBadGateway, "request_cancelled", msg
	}
	return http.StatusBadGateway, "upstream_unreachable", msg
}

// statusRecorder remembers the status for the log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the real writer (flushing).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// copyBuffers recycles ReverseProxy's 32-KiB copy buffers.
type copyBuffers struct{ pool sync.Pool }

func (c *copyBuffers) Get() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (c *copyBuffers) Put(b []byte) { c.pool.Put(&b) }
