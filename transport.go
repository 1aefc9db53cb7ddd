package authrefresh

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// Transport is an http.RoundTripper that authenticates requests with a
// Session's token, and replays a request once, with a refreshed token, when
// the server refuses it.
//
// RoundTrip never modifies the caller's request and always closes its body.
//
// To bound requests in an http.Client of your own, prefer a context deadline
// (context.WithTimeout) to http.Client.Timeout: net/http enforces Timeout
// cheaply only for its own *http.Transport, and for any other RoundTripper,
// this one included, with an extra goroutine and timer per request (~3 µs and
// 13 allocations here; BENCHMARKS.md). Client applies its Timeout as a
// context deadline for that reason.
type Transport struct {
	// Session supplies and refreshes the token. Required.
	Session *Session

	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper

	// Origins are where the token may be sent, as "scheme://host[:port]".
	// Requests to other origins go out without it. Empty means any origin;
	// in every case a redirect never carries the token to an origin other
	// than the one of the request that was redirected. Client sets this to its
	// base URL's origin.
	Origins []string

	// RetryStatuses are the statuses that mean "token refused": the token is
	// refreshed (unless it was already replaced) and the request replayed once.
	// nil means {401}. Some APIs answer an expired token with 403 instead.
	// Whatever the statuses, an answer whose WWW-Authenticate challenge says
	// error="invalid_token" (RFC 6750 §3.1) is a refusal too.
	RetryStatuses []int

	// ShouldRefresh, if set, decides instead of RetryStatuses whether a
	// response means the token was refused. It must not read the body.
	ShouldRefresh func(*http.Response) bool

	// MaxReplayBuffer is how many bytes of a body that has neither GetBody
	// nor Seek are kept for a replay, while they stream out. A longer body is
	// not replayed: the refusal returns an error wrapping ErrBodyNotReplayable.
	// 0 means DefaultMaxReplayBuffer; negative means never buffer.
	MaxReplayBuffer int64

	// ReplayBudget, if set, bounds the memory all replay copies of this
	// Transport (and of others sharing the budget) hold at once; see
	// ReplayBudget. nil means each request is bounded by MaxReplayBuffer only.
	ReplayBudget *ReplayBudget

	auth atomic.Pointer[authHeader] // the last token's header
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if t.Session == nil {
		closeBody(req)
		return nil, errors.New("authrefresh: Transport.Session is nil")
	}
	opt := skipOf(ctx)
	if opt&skipAuth != 0 || !t.mayAuthenticate(req) {
		return t.base().RoundTrip(req)
	}
	tok, err := t.Session.Token(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if tok.dpop() {
		return t.roundTripDPoP(req, tok, opt)
	}
	if opt&skipRefresh != 0 {
		return t.base().RoundTrip(withAuthorization(req, req.Body, t.header(tok)))
	}

	body := newReplayer(req, t.replayLimit(), t.ReplayBudget)
	first := withAuthorization(req, body.first, t.header(tok))
	if body.guard != nil {
		first.GetBody = nil // only we can replay this body
	}
	resp, err := t.base().RoundTrip(first)
	if err != nil || !t.refused(resp) {
		if err == nil {
			t.Session.Accepted(tok)
		}
		body.release()
		return resp, err
	}
	return t.replay(req, resp, tok, body)
}

// authHeader is the Authorization value of one token, built once.
type authHeader struct {
	tok   *Token
	value []string // shared read-only by every request that carries tok
}

// header returns tok's Authorization value, from the one-token cache: a
// Session hands out the same *Token until it is replaced, so the string is
// built once per token, not per request.
func (t *Transport) header(tok *Token) []string {
	if h := t.auth.Load(); h != nil && h.tok == tok {
		return h.value
	}
	h := &authHeader{tok: tok, value: []string{tok.AuthorizationHeader()}}
	t.auth.Store(h)
	return h.value
}

func (t *Transport) replayLimit() int64 {
	if t.MaxReplayBuffer == 0 {
		return DefaultMaxReplayBuffer
	}
	return t.MaxReplayBuffer
}

func (t *Transport) refused(resp *http.Response) bool {
	if t.ShouldRefresh != nil {
		return t.ShouldRefresh(resp)
	}
	if resp.StatusCode < 400 {
		return false
	}
	if t.RetryStatuses == nil && resp.StatusCode == http.StatusUnauthorized {
		return true
	}
	for _, s := range t.RetryStatuses {
		if resp.StatusCode == s {
			return true
		}
	}
	return invalidTokenChallenge(resp.Header)
}

// invalidTokenChallenge reports a WWW-Authenticate challenge that says the
// token itself is the problem (RFC 6750 §3.1 error="invalid_token"),
// whatever the status it came with: some servers send it with 403 or 400.
// Other errors (insufficient_scope) are not refusals of the token.
func invalidTokenChallenge(h http.Header) bool {
	for _, v := range h.Values("Www-Authenticate") {
		if strings.Contains(v, `error="invalid_token"`) || strings.Contains(v, "error=invalid_token") {
			return true
		}
	}
	return false
}

// mayAuthenticate enforces where the token may go: a configured origin, and
// never across a redirect to another origin.
func (t *Transport) mayAuthenticate(req *http.Request) bool {
	if req.URL == nil {
		return false
	}
	if req.Response != nil {
		first := req
		for i := 0; i < 100 && first.Response != nil && first.Response.Request != nil; i++ {
			first = first.Response.Request
		}
		if first.URL == nil || !sameOrigin(first.URL, req.URL) {
			return false
		}
	}
	if len(t.Origins) == 0 {
		return true
	}
	for _, o := range t.Origins {
		if originMatches(o, req.URL) {
			return true
		}
	}
	return false
}

// withAuthorization is a shallow copy of req with its own header map carrying
// the token and the given body.
func withAuthorization(req *http.Request, body io.ReadCloser, header []string) *http.Request {
	r := *req // the caller's request is never modified
	// The values are shared, never modified: no deep copy. Up to 7 headers,
	// the map is one group (one bucket before Go 1.24) with room for
	// Authorization, and the runtime clones it faster than a loop copies
	// (~130 vs ~180 ns); from 8, a clone would grow when Authorization is
	// added, so the copy is sized for it instead.
	switch n := len(req.Header); {
	case n == 0:
		r.Header = make(http.Header, 1)
	case n < 8:
		r.Header = maps.Clone(req.Header)
	default:
		r.Header = make(http.Header, n+1)
		for k, v := range req.Header {
			r.Header[k] = v
		}
	}
	r.Header["Authorization"] = header
	r.Body = body
	return &r
}

// discard drains a little of a refused response so its connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// originMatches compares "scheme://host[:port][/...]" with u's origin
// without allocating.
func originMatches(origin string, u *url.URL) bool {
	// The common case, an exact spelling, without any folding.
	if n := len(u.Scheme); len(origin) == n+3+len(u.Host) && origin[:n] == u.Scheme && origin[n:n+3] == "://" && origin[n+3:] == u.Host {
		return true
	}
	scheme, rest, ok := strings.Cut(origin, "://")
	if !ok || !strings.EqualFold(scheme, u.Scheme) {
		return false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return strings.EqualFold(withoutDefaultPort(rest, scheme), withoutDefaultPort(u.Host, u.Scheme))
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(withoutDefaultPort(a.Host, a.Scheme), withoutDefaultPort(b.Host, b.Scheme))
}

func withoutDefaultPort(host, scheme string) string {
	switch {
	case strings.EqualFold(scheme, "https") && strings.HasSuffix(host, ":443"):
		return host[:len(host)-4]
	case strings.EqualFold(scheme, "http") && strings.HasSuffix(host, ":80"):
		return host[:len(host)-3]
	}
	return host
}
