package sidecar

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/internal/upstream"
)

// Config configures a sidecar handler. Session and Upstream are required;
// the zero value of every other field works.
type Config struct {
	// Session supplies the token.
	Session *authrefresh.Session
	// Upstream is the API's base URL; the token goes to its origin only.
	Upstream *url.URL
	// Logger gets a line per request (Info; refused and failed ones at
	// Warn); nil discards.
	Logger *slog.Logger
	// LoginHint tells how to log in again, in answers and logs after the
	// session ended; empty means "log in again".
	LoginHint string
	// MaxReplayBuffer is the bytes of one streamed request body kept for a
	// replay; 0 means authrefresh.DefaultMaxReplayBuffer.
	MaxReplayBuffer int64
	// ReplayBudget, if set, bounds the bytes all replay copies hold at once.
	ReplayBudget *authrefresh.ReplayBudget
	// RetryStatuses are the upstream's statuses for a refused token (nil: 401).
	RetryStatuses []int
	// Guard says who may use the sidecar.
	Guard Guard
	// Limits bound the requests in flight and their bodies; the zero value
	// means 256 at once, 30 s in the queue, a body idle 15 s or 2 min long.
	Limits Limits
}

// New is the sidecar's handler: the guard, the limits, then a forwarder
// (internal/upstream's: a plain exchange without httputil.ReverseProxy's
// copies of every request; an upgrade through ReverseProxy) with the
// authrefresh Transport limited to the upstream's origin.
func New(cfg Config) http.Handler {
	if cfg.Limits.Concurrent == 0 {
		cfg.Limits = Limits{Concurrent: 256, QueueWait: 30 * time.Second, BodyIdle: 15 * time.Second, BodyTotal: 2 * time.Minute}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LoginHint == "" {
		cfg.LoginHint = "log in again"
	}
	if cfg.MaxReplayBuffer == 0 {
		cfg.MaxReplayBuffer = authrefresh.DefaultMaxReplayBuffer
	}
	target, logger, loginHint := cfg.Upstream, cfg.Logger, cfg.LoginHint
	// A sidecar talks to one upstream from many client connections: as many
	// upstream connections are kept idle as it serves requests at once (the
	// limit above also bounds those in use).
	upstreamConns := upstream.New(target, cfg.Limits.Concurrent)
	transport := &authrefresh.Transport{Session: cfg.Session, Base: upstreamConns, Origins: []string{target.Scheme + "://" + target.Host},
		MaxReplayBuffer: cfg.MaxReplayBuffer, ReplayBudget: cfg.ReplayBudget, RetryStatuses: cfg.RetryStatuses}
	rewrite := func(out, in *http.Request) {
		(&httputil.ProxyRequest{In: in, Out: out}).SetURL(target)
		out.Host = target.Host
	}
	failed := func(w http.ResponseWriter, r *http.Request, err error) {
		status, code, desc := proxyStatus(err, loginHint)
		if bodyTimedOut(r) {
			status, code, desc = http.StatusRequestTimeout, "request_body_timeout", "the request body stopped coming (--body-idle-timeout) or took too long (--body-timeout)"
		}
		if status == http.StatusUnauthorized {
			logger.Warn("proxy: "+code, "error", err, "fix", loginHint)
		}
		writeProxyError(w, status, code, desc)
	}
	// The session's token replaces the caller's, nor does the caller's
	// browser state travel upstream; the proxy's own secret
	// (Proxy-Authorization) is a hop's header, never forwarded either.
	// An upgrade (a WebSocket) goes through the forwarder's ReverseProxy,
	// by the same rules.
	fwd := &upstream.Forwarder{Transport: transport, Rewrite: rewrite, Drop: []string{"Authorization", "Cookie"},
		ErrorHandler: failed, Buffers: &upstream.Buffers{}} // else each answer allocates 32 KiB
	metrics := &proxyMetrics{}
	forward := limited(cfg.Limits, logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		fwd.Forward(r.Context(), rec, r)
		metrics.count(rec.status)
		level := slog.LevelInfo
		if rec.status == http.StatusUnauthorized || rec.status >= 500 {
			level = slog.LevelWarn
		}
		if logger.Enabled(r.Context(), level) { // else its arguments would be built for nothing
			logger.Log(r.Context(), level, "proxy", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(began).Round(time.Microsecond))
		}
	}))
	// The operator paths are behind the guard (only the owner), not
	// behind the concurrency limit: a health check must answer when the
	// proxy is full.
	return guard(cfg.Guard, logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, opsPrefix) {
			serveOps(w, r, cfg, metrics)
			return
		}
		forward.ServeHTTP(w, r)
	}))
}

// proxyStatus derives the sidecar's answer to a request it could not
// forward from the library's error kinds.
func proxyStatus(err error, loginHint string) (status int, code, description string) {
	msg := safetext.Message(err)
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
