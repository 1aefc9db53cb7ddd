// Package upstream is the road of a credential-holding proxy (the sidecar,
// the BFF's API routes) to one upstream: a Forwarder that builds each
// outgoing request once, and a Transport of HTTP/1.1 over kept-alive
// connections that never hand one exchange's answer to another.
package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Transport is the road to one upstream: HTTP/1.1 over
// a pool of kept-alive connections, each request written and its answer read
// by the goroutine that asked. net/http's Transport hands every request to
// two goroutines of its connection (one writes, one reads) and back again; on
// a sidecar sharing its CPU with the program it serves and the upstream,
// those hand-offs and their wake-ups were the largest part of the hop's cost
// after the system calls themselves.
//
// What this path leaves out goes to fallback, a net/http Transport: a body
// of unknown length or over leanBodyMax (an upstream may answer before it
// has read an upload, 401 or 413, and close; net/http reads that answer while
// still writing, where this path, writing first, would see only the broken
// connection), a protocol upgrade (WebSocket), a request with trailers, and
// every request when HTTP_PROXY/HTTPS_PROXY routes the upstream through a
// proxy.
type Transport struct {
	target   *url.URL // scheme and host of the upstream
	addr     string   // host:port dialed
	tls      *tls.Config
	fallback *http.Transport
	viaProxy bool // the environment routes the upstream through a proxy

	maxIdle     int           // idle connections kept
	idleTimeout time.Duration // an idle connection older than this is closed, not reused
	// maxHeaderBytes bounds an answer's status line and headers.
	maxHeaderBytes int64

	mu   sync.Mutex
	idle []*keptConn // most recently used last

	dials atomic.Int64 // connections opened, for tests
}

// New returns the transport to target's scheme and host,
// keeping up to maxIdle connections.
func New(target *url.URL, maxIdle int) *Transport {
	fallback := http.DefaultTransport.(*http.Transport).Clone()
	// The fallback's connections carry one exchange each. net/http's
	// Transport puts a connection back in its pool before its reader
	// goroutine looks for bytes beyond the answer: a request taking it in
	// that moment reads them as its own answer (TestUpstreamNeverMixesAnswers
	// counts it). What goes this way (large or streamed uploads, upgrades,
	// trailers, an environment proxy) pays a connection each instead.
	// (A negative MaxIdleConnsPerHost keeps none, without asking the
	// upstream to close as DisableKeepAlives would: an upstream answering
	// an upload early then closes at once, and the answer is lost.)
	fallback.MaxIdleConnsPerHost = -1
	fallback.MaxConnsPerHost = maxIdle
	t := &Transport{
		target: &url.URL{Scheme: target.Scheme, Host: target.Host}, addr: canonicalAddr(target),
		fallback: fallback, maxIdle: maxIdle, idleTimeout: 90 * time.Second, maxHeaderBytes: 1 << 20,
	}
	if target.Scheme == "https" {
		t.tls = &tls.Config{ServerName: target.Hostname(), NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	if u, err := http.ProxyFromEnvironment(&http.Request{URL: t.target}); err != nil || u != nil {
		t.viaProxy = true
	}
	return t
}

// canonicalAddr is u's host:port, with the scheme's port if it names none.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// keptConn is one kept-alive connection.
type keptConn struct {
	conn      net.Conn
	limit     io.LimitedReader // what br reads from: bounds an answer's headers
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// leanBodyMax is the largest request body sent on the lean path: it fits in
// the sockets' buffers, so writing it never waits for the upstream to read.
const leanBodyMax = 32 << 10

// errStaleConn is a kept-alive connection found closed by the upstream, with
// no answer: a request that means the same sent twice (replayable) is sent
// again on a new connection.
var errStaleConn = errors.New("the upstream closed an idle connection")

// aLongTimeAgo is a deadline in the past: it wakes a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.viaProxy || req.URL.Scheme != t.target.Scheme || req.URL.Host != t.target.Host ||
		req.Header["Upgrade"] != nil || len(req.Trailer) > 0 || req.Method == http.MethodConnect ||
		(req.Body != nil && req.Body != http.NoBody && (req.ContentLength <= 0 || req.ContentLength > leanBodyMax)) {
		return t.fallback.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(req.Context())
		if err != nil {
			closeRequestBody(req)
			return nil, err
		}
		resp, err := t.exchange(c, req, reused)
		if err == nil {
			return resp, nil
		}
		c.conn.Close()
		if !reused || attempt > 0 || !errors.Is(err, errStaleConn) || !replayable(req) {
			closeRequestBody(req)
			return nil, err
		}
		// Sent on a connection the upstream had just closed: once more on a
		// new one, with the body again if it had one.
		if req, err = rewound(req); err != nil {
			return nil, err
		}
	}
}

// replayable reports whether req may be sent again after a connection
// failed with no answer: the upstream may have acted on it, so only a request
// that means the same sent twice, as net/http's Transport decides.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header["Idempotency-Key"] != nil || req.Header["X-Idempotency-Key"] != nil
}

// rewound is req with its body from the start again, if it can be had.
func rewound(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	if req.GetBody == nil {
		req.Body.Close()
		return nil, fmt.Errorf("upstream %s: %w, and the request body cannot be sent again", req.URL.Host, errStaleConn)
	}
	body, err := req.GetBody()
	if err != nil {
		req.Body.Close()
		return nil, err
	}
	req.Body.Close()
	r := *req
	r.Body = body
	return &r, nil
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// get takes the most recently used idle connection that is still clean, or
// opens one.
func (t *Transport) get(ctx context.Context) (c *keptConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		c = t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if now.Sub(c.idleSince) < t.idleTimeout && c.clean() {
			return c, true, nil
		}
		c.conn.Close()
		t.mu.Lock()
	}
	t.mu.Unlock()
	return t.dial(ctx)
}

// clean reports whether c may carry another request: the upstream has not
// closed it, and nothing has arrived on it since its last answer ended. Bytes
// an upstream sends beyond an answer's framing (a body on a HEAD answer or a
// 204, more than its Content-Length) would be read as the next request's
// answer, handing one caller another's: such a connection is never reused.
// It is asked before every reuse, however short the idle time, because the
// stray bytes of a broken upstream arrive right behind its answer.
func (c *keptConn) clean() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		// Records TLS has already taken off the socket are no longer in
		// it: ask TLS itself, without waiting for the network.
		_ = tc.SetReadDeadline(aLongTimeAgo)
		_, err := c.br.Peek(1)
		_ = tc.SetReadDeadline(time.Time{})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
	}
	return stillOpen(c.conn)
}

func (t *Transport) dial(ctx context.Context) (*keptConn, bool, error) {
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	if t.tls != nil {
		tc := tls.Client(conn, t.tls)
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, false, err
		}
		conn = tc
	}
	t.dials.Add(1)
	c := &keptConn{conn: conn}
	c.limit.R = conn
	c.br = bufio.NewReaderSize(&c.limit, 16<<10)
	c.bw = bufio.NewWriterSize(conn, 16<<10)
	return c, false, nil
}

// put keeps c for the next request, or closes it when enough are idle or
// bytes beyond the answer are already buffered.
func (t *Transport) put(c *keptConn) {
	if c.br.Buffered() > 0 {
		c.conn.Close()
		return
	}
	c.idleSince = time.Now()
	t.mu.Lock()
	if len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.conn.Close()
}

// CloseIdleConnections closes the connections not in use.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		c.conn.Close()
	}
	t.fallback.CloseIdleConnections()
}

// exchange sends req on c and reads the head of its answer. On an error c
// is the caller's to close; on a reused c, an error that says the upstream
// had closed it wraps errStaleConn.
func (t *Transport) exchange(c *keptConn, req *http.Request, reused bool) (*http.Response, error) {
	ctx := req.Context()
	// A cancelled request wakes whatever c is blocked in; c is then not reused.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	if err := writeRequest(c.bw, req); err != nil {
		if reused && isStale(err) {
			err = fmt.Errorf("upstream %s: %w (%v)", t.addr, errStaleConn, err)
		}
		return fail(err)
	}
	var resp *http.Response
	for informational := 0; ; informational++ {
		c.limit.N = t.maxHeaderBytes
		if _, err := c.br.Peek(1); err != nil {
			if reused && informational == 0 && isStale(err) {
				err = fmt.Errorf("upstream %s: %w (%v)", t.addr, errStaleConn, err)
			}
			return fail(err)
		}
		r, err := http.ReadResponse(c.br, req)
		if err != nil {
			if c.limit.N == 0 {
				err = fmt.Errorf("upstream %s answered with more than %d bytes of headers", t.addr, t.maxHeaderBytes)
			}
			return fail(err)
		}
		c.limit.N = 1<<63 - 1
		// 1xx answers (103 Early Hints…) are the upstream's business; the
		// caller gets the final one. A 101 was not asked for: upgrades go
		// through the fallback.
		if r.StatusCode >= 200 || r.StatusCode == http.StatusSwitchingProtocols || informational == 4 {
			resp = r
			break
		}
	}
	if resp.StatusCode < 200 {
		return fail(fmt.Errorf("upstream %s answered %s, which the proxy did not ask for", t.addr, resp.Status))
	}
	keep := !resp.Close && !req.Close && (resp.ContentLength >= 0 || chunked(resp.TransferEncoding))
	if resp.Body == http.NoBody || resp.ContentLength == 0 {
		if stop() && keep {
			t.put(c)
		} else {
			c.conn.Close()
		}
		resp.Body = http.NoBody
		return resp, nil
	}
	resp.Body = &answerBody{body: resp.Body, t: t, c: c, stop: stop, keep: keep}
	return resp, nil
}

func chunked(te []string) bool { return len(te) == 1 && te[0] == "chunked" }

// isStale reports whether err means the upstream had closed the connection
// before this request.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// answerBody is an answer's body; at its end the connection goes back to
// the pool, and closed before its end the connection is closed.
type answerBody struct {
	body  io.ReadCloser
	t     *Transport
	c     *keptConn
	stop  func() bool
	keep  bool
	done  atomic.Bool // finished: the connection is back in the pool, or closed
	ended atomic.Bool // read to its end: more reads say io.EOF again
}

func (b *answerBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		if b.ended.Load() {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.body.Read(p)
	if err != nil {
		if err == io.EOF {
			b.ended.Store(true)
		}
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *answerBody) Close() error {
	b.finish(false)
	return nil
}

// errBodyClosed is a Read after Close or after the end.
var errBodyClosed = errors.New("upstream answer body already closed")

// finish ends the body once: the connection is reused if the body was read
// to its end, the request was not cancelled and the answer allowed it.
func (b *answerBody) finish(atEnd bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	if b.stop() && atEnd && b.keep {
		b.t.put(b.c)
		return
	}
	b.c.conn.Close()
}

// writeRequest writes req's head and body to w as HTTP/1.1, framing the body
// itself: only a body of known length is written here.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	uri := req.URL.RequestURI()
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validMethod(req.Method) || !validHeaderValue(uri) || strings.ContainsRune(uri, ' ') || !validHeaderValue(host) {
		return fmt.Errorf("request %s %q: not a valid HTTP/1.1 request line", req.Method, req.URL.Path)
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		if framedHere(k) {
			continue
		}
		if !validHeaderName(k) {
			return fmt.Errorf("request header name %q is not valid", k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return fmt.Errorf("request header %s holds a line break or a control character", k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if req.Close {
		w.WriteString("Connection: close\r\n")
	}
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	switch {
	case body == nil && req.ContentLength <= 0:
		if req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
			w.WriteString("Content-Length: 0\r\n")
		}
		w.WriteString("\r\n")
		return w.Flush()
	case body == nil:
		return fmt.Errorf("request announces %d body bytes and has no body", req.ContentLength)
	case req.ContentLength > 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n\r\n")
		n, err := io.Copy(w, io.LimitReader(body, req.ContentLength))
		body.Close()
		if err != nil {
			return err
		}
		if n < req.ContentLength {
			return fmt.Errorf("request body ended after %d of its %d bytes", n, req.ContentLength)
		}
		return w.Flush()
	default: // 0 with a body set means unknown
		body.Close()
		return errors.New("a request body of unknown length goes through net/http's Transport")
	}
}

// framedHere reports whether the header k, in any case, is one writeRequest
// writes itself or leaves out (the connection and the body's framing are
// this hop's).
func framedHere(k string) bool {
	switch len(k) {
	case 4:
		return strings.EqualFold(k, "Host")
	case 7:
		return strings.EqualFold(k, "Trailer")
	case 10:
		return strings.EqualFold(k, "Connection")
	case 14:
		return strings.EqualFold(k, "Content-Length")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// validMethod reports whether m is an HTTP token.
func validMethod(m string) bool { return m != "" && validHeaderName(m) }

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s holds no control character but tab:
// no line break could start a header or a request of the caller's making.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Buffers recycles the 32-KiB buffers answers are copied through, by a
// Forwarder or an httputil.ReverseProxy (its BufferPool): without, each
// answer allocates one.
type Buffers struct{ pool sync.Pool }

// Get implements httputil.BufferPool. A nil Buffers makes a buffer each
// time.
func (c *Buffers) Get() []byte {
	if c != nil {
		if b, ok := c.pool.Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, 32<<10)
}

// Put implements httputil.BufferPool; a nil Buffers keeps nothing.
func (c *Buffers) Put(b []byte) {
	if c != nil {
		c.pool.Put(&b)
	}
}
