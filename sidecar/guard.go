package sidecar

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// The sidecar holds a live credential, so it answers only its owner, as
// ssh-agent or the Docker socket do. A web page the user visits can reach
// 127.0.0.1 too: through a cross-site request (its Origin and Sec-Fetch-Site
// say so) or through DNS rebinding (a name of the attacker's that resolves to
// 127.0.0.1: its Host says so). guard refuses both, and, when configured,
// every request without the client secret. Every refusal is a JSON error that
// says why, and a log line.

// Guard is who may use the sidecar.
type Guard struct {
	// Hosts are the Host values accepted (lower case, with port); empty
	// means any (a unix socket, or a Secret with no other Host to check).
	Hosts []string
	// Origins are the browser Origins allowed to call the sidecar.
	Origins []string
	// Secret, if set, must come as "Proxy-Authorization: Bearer <Secret>".
	Secret    []byte
	secretSum [32]byte // its SHA-256, set by guard
}

// LoopbackHosts are the Host values a client of a loopback listener at addr
// sends: the address itself, and localhost, 127.0.0.1 and [::1] on its port.
func LoopbackHosts(addr net.Addr) []string {
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return nil
	}
	hosts := []string{strings.ToLower(addr.String())}
	for _, h := range []string{"localhost", "127.0.0.1", "[::1]"} {
		hosts = append(hosts, h+":"+port)
	}
	return hosts
}

// refusal is a request the guard turned away.
type refusal struct {
	status      int
	code, why   string
	authenticat bool // ask for the client secret (407)
}

// check decides whether r may use the sidecar.
func (g *Guard) check(r *http.Request) *refusal {
	if len(g.Hosts) > 0 && !contains(g.Hosts, strings.ToLower(r.Host)) {
		return &refusal{http.StatusForbidden, "host_not_allowed", fmt.Sprintf("Host %q is not this proxy's address (a DNS-rebinding page would send its own name); allow it with --allow-host", r.Host), false}
	}
	origin := r.Header.Get("Origin")
	allowedOrigin := origin != "" && contains(g.Origins, origin)
	if origin != "" && !allowedOrigin {
		return &refusal{http.StatusForbidden, "origin_not_allowed", fmt.Sprintf("requests from the web page %q are refused: a page the user visits must not use their credential; allow it with --allow-origin", origin), false}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); (site == "cross-site" || site == "same-site") && !allowedOrigin {
		return &refusal{http.StatusForbidden, "cross_site_request", "a browser sent this request on behalf of another site (Sec-Fetch-Site: " + site + "); allow its origin with --allow-origin", false}
	}
	if g.Secret != nil {
		auth := r.Header.Get("Proxy-Authorization")
		scheme, value, _ := strings.Cut(auth, " ")
		// Hashes compared, so the comparison takes the same time whatever
		// the length of what was sent.
		got := sha256.Sum256([]byte(strings.TrimSpace(value)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(g.secretSum[:], got[:]) != 1 {
			return &refusal{http.StatusProxyAuthRequired, "proxy_secret_required", "this proxy needs its client secret: send Proxy-Authorization: Bearer <the contents of --client-secret-file>", true}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// guard wraps next with g's checks.
func guard(g Guard, logger *slog.Logger, next http.Handler) http.Handler {
	g.secretSum = sha256.Sum256(g.Secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := g.check(r); ref != nil {
			logger.Warn("proxy: refused", "reason", ref.code, "method", r.Method, "path", r.URL.Path, "host", r.Host, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
			if ref.authenticat {
				w.Header().Set("Proxy-Authenticate", `Bearer realm="authrefresh proxy"`)
			}
			writeProxyError(w, ref.status, ref.code, ref.why)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeProxyError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// Limits bound what the sidecar spends on its callers.
type Limits struct {
	// Concurrent caps the requests in flight (so the upstream connections,
	// and the memory each request holds); a request waits at most QueueWait
	// for a slot, then gets 503.
	Concurrent int
	QueueWait  time.Duration
	// BodyIdle is the longest pause between two reads of a request body;
	// BodyTotal the longest a body may take in all.
	BodyIdle, BodyTotal time.Duration
}

// limited applies l around next.
func limited(l Limits, logger *slog.Logger, next http.Handler) http.Handler {
	slots := make(chan struct{}, l.Concurrent)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			t := time.NewTimer(l.QueueWait)
			select {
			case slots <- struct{}{}:
				t.Stop()
			case <-t.C:
				logger.Warn("proxy: busy", "in_flight", l.Concurrent, "method", r.Method, "path", r.URL.Path)
				w.Header().Set("Retry-After", "1")
				writeProxyError(w, http.StatusServiceUnavailable, "proxy_busy", fmt.Sprintf("%d requests are in flight, the proxy's limit (--max-concurrent), and none finished within %s (--queue-timeout)", l.Concurrent, l.QueueWait))
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		defer func() { <-slots }()
		if r.Body != nil && r.Body != http.NoBody {
			b := &slowBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: l.BodyIdle, end: time.Now().Add(l.BodyTotal)}
			b.extend()
			r.Body = b
			r = r.WithContext(context.WithValue(r.Context(), slowBodyKey{}, b))
		}
		next.ServeHTTP(w, r)
	})
}

// slowBody is a request body that must keep coming: each read extends the
// connection's read deadline by the idle timeout, never past the total one.
// A client trickling a byte every few seconds is cut off at the total, one
// sending nothing at the idle timeout.
type slowBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	idle     time.Duration
	end      time.Time
	timedOut atomic.Bool
}

func (b *slowBody) extend() { _ = b.rc.SetReadDeadline(earliest(b.end, time.Now().Add(b.idle))) }

func (b *slowBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		b.timedOut.Store(true)
	}
	if n > 0 && err == nil {
		b.extend()
	}
	return n, err
}

// slowBodyKey finds a request's slowBody from the request the forwarder
// hands its ErrorHandler, whose Body it has wrapped.
type slowBodyKey struct{}

// bodyTimedOut reports whether r's body was cut off by a body timeout.
func bodyTimedOut(r *http.Request) bool {
	b, ok := r.Context().Value(slowBodyKey{}).(*slowBody)
	return ok && b.timedOut.Load()
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
