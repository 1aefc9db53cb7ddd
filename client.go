package authrefresh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

const (
	// DefaultClientTimeout bounds a whole Client call, refresh and replay included.
	DefaultClientTimeout = 30 * time.Second

	// DefaultMaxResponseBytes bounds the body a Client decodes.
	DefaultMaxResponseBytes = 32 << 20
)

// Client is an API client in the style of an axios instance: a base URL,
// default headers, a timeout, and JSON verbs, on top of a Transport that keeps
// the token fresh.
//
//	c, _ := authrefresh.NewClient("https://api.example.com/api/v1/", session)
//	err := c.Post(ctx, "data", product, &created)
//
// A non-2xx answer is an *APIError; a dead session is ErrSessionExpired.
// Fields may be changed after NewClient and before first use. The zero
// Client is not usable, but says so: its calls return an error naming the
// missing field.
type Client struct {
	// BaseURL is what paths are resolved against. As with axios, a path is
	// appended to the base URL's path ("data" and "/data" both give
	// .../api/v1/data); an absolute URL ("https://…") is used as is. Only
	// BaseURL's origin (scheme, host and port), as it is at each call,
	// receives the token.
	BaseURL *url.URL
	// Header is sent with every request (Accept: application/json by default).
	Header http.Header
	// Transport adds the Session's token and refreshes it; its settings
	// (RetryStatuses, ShouldRefresh, MaxReplayBuffer, Base) are the Client's.
	// NewClient sets one.
	Transport *Transport
	// HTTPClient sends the requests; nil means a plain http.Client around
	// Transport. NewClient sets one around Transport; replace it to put a
	// RoundTripper of your own in front.
	HTTPClient *http.Client
	// Timeout bounds each call — sending, a refresh and a replay if needed,
	// and reading the answer. 0 means DefaultClientTimeout; negative means
	// none beyond the context's own deadline. It is applied as a context
	// deadline, not as http.Client.Timeout: for any RoundTripper other than
	// its own *http.Transport, net/http enforces Client.Timeout with an extra
	// goroutine, two channels and a timer per request. A call whose context
	// is never cancelled shares its deadline with the calls that start
	// within a hundredth of Timeout of it, so it may run up to 1 % longer.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body the Client reads; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64

	// memo holds what every call would otherwise work out again (NewClient
	// sets it; a Client built otherwise works it out each time).
	memo *clientMemo
}

// clientMemo is a Client's per-call work done once: the base URL's text,
// and a deadline shared by calls that start close together.
type clientMemo struct {
	base     atomic.Pointer[baseText]
	deadline atomic.Pointer[sharedDeadline]
}

// baseText is a BaseURL's text, and whether a plain path can be appended
// to it (plainBase), worked out once per BaseURL value.
type baseText struct {
	u     *url.URL
	text  string
	plain bool
}

// baseOf is c.BaseURL's text; u is never nil.
func (c *Client) baseOf(u *url.URL) *baseText {
	if c.memo != nil {
		if b := c.memo.base.Load(); b != nil && b.u == u {
			return b
		}
	}
	b := &baseText{u: u, text: u.String(), plain: plainBase(u)}
	if c.memo != nil {
		c.memo.base.Store(b)
	}
	return b
}

// NewClient returns a Client for the API at baseURL whose requests carry
// session's token. Only baseURL's origin receives the token.
func NewClient(baseURL string, session *Session) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("authrefresh: base URL %q is not an absolute http(s) URL", baseURL)
	}
	// The escaped path decides: "/a%2F" decodes to "/a/" but is one segment
	// "a%2F", which resolving a path against would drop.
	if !strings.HasSuffix(u.EscapedPath(), "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	if session == nil {
		return nil, errors.New("authrefresh: NewClient needs a Session")
	}
	t := &Transport{Session: session}
	return &Client{
		memo:       &clientMemo{},
		BaseURL:    u,
		Header:     http.Header{"Accept": {"application/json"}},
		Transport:  t,
		HTTPClient: &http.Client{Transport: t},
	}, nil
}

// withTimeout bounds ctx by the Client's Timeout, unless ctx already ends
// sooner; the returned cancel is never nil.
//
// A ctx that can never be cancelled (no Done channel: Background, or one
// carrying values only) gets a deadline shared with the calls that start
// within a hundredth of the Timeout of it: the call ends between Timeout and
// 1.01 × Timeout after it started, and is spared a timer of its own.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.Timeout
	if d == 0 {
		d = DefaultClientTimeout
	}
	if d < 0 {
		return ctx, func() {}
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return ctx, func() {}
	}
	if ctx.Done() == nil && c.memo != nil {
		return &withSharedDeadline{Context: ctx, shared: c.memo.sharedDeadline(d)}, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// sharedDeadline is a context that ends at a deadline, shared by every
// call that starts while at least timeout remains of it.
type sharedDeadline struct {
	context.Context
	timeout time.Duration
	at      time.Time
	cancel  context.CancelFunc // never called early: it ends at its deadline
}

// sharedDeadline returns a deadline at least d away.
func (m *clientMemo) sharedDeadline(d time.Duration) *sharedDeadline {
	now := time.Now()
	if sd := m.deadline.Load(); sd != nil && sd.timeout == d && sd.at.Sub(now) >= d {
		return sd
	}
	at := now.Add(d + d/100)
	ctx, cancel := context.WithDeadline(context.Background(), at)
	sd := &sharedDeadline{Context: ctx, timeout: d, at: at, cancel: cancel}
	m.deadline.Store(sd)
	return sd
}

// withSharedDeadline is a caller's context that is never cancelled (its
// values stand) bounded by a shared deadline (its Deadline, Done and Err).
type withSharedDeadline struct {
	context.Context // the caller's: Value
	shared          *sharedDeadline
}

func (w *withSharedDeadline) Deadline() (time.Time, bool) { return w.shared.Deadline() }
func (w *withSharedDeadline) Done() <-chan struct{}       { return w.shared.Done() }
func (w *withSharedDeadline) Err() error                  { return w.shared.Err() }

// AfterFunc makes a context derived from w (context.WithCancel, as
// net/http does) end with the shared deadline without a goroutine of its
// own watching it.
func (w *withSharedDeadline) AfterFunc(f func()) func() bool {
	return context.AfterFunc(w.shared, f)
}

// Get sends GET path and decodes the JSON answer into out (nil: discard it).
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.JSON(ctx, http.MethodGet, path, nil, out)
}

// Post sends in as JSON to path and decodes the answer into out.
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	return c.JSON(ctx, http.MethodPost, path, in, out)
}

// Put sends in as JSON to path with PUT and decodes the answer into out.
func (c *Client) Put(ctx context.Context, path string, in, out any) error {
	return c.JSON(ctx, http.MethodPut, path, in, out)
}

// Patch sends in as JSON to path with PATCH and decodes the answer into out.
func (c *Client) Patch(ctx context.Context, path string, in, out any) error {
	return c.JSON(ctx, http.MethodPatch, path, in, out)
}

// Delete sends DELETE path and decodes the answer into out.
func (c *Client) Delete(ctx context.Context, path string, out any) error {
	return c.JSON(ctx, http.MethodDelete, path, nil, out)
}

// JSON sends a request and decodes a 2xx answer into out.
//
// in may be nil (no body), a []byte or json.RawMessage (sent as is), an
// io.Reader (streamed), or any value (encoded as JSON). out may be nil
// (answer discarded), a *[]byte (raw answer), or a pointer to decode into.
func (c *Client) JSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	switch v := in.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(v)
	case json.RawMessage:
		body = bytes.NewReader(v)
	case io.Reader:
		body = v
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("authrefresh: encoding the %s body: %w", method, err)
		}
		body = bytes.NewReader(data)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req, onBase, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	var resp *http.Response
	if onBase { // appended to BaseURL's text: its origin by construction
		resp, err = c.deliver(req)
	} else {
		resp, err = c.send(req)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		apiErr := NewAPIError(req, resp, data)
		apiErr.Err = err
		return apiErr
	}
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("authrefresh: %s %s: reading the answer: %w", method, req.URL.Path, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("authrefresh: %s %s: answer larger than %d bytes", method, req.URL.Path, limit)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil // 204 No Content and friends
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("authrefresh: %s %s: decoding the answer: %w", method, req.URL.Path, err)
	}
	return nil
}

// NewRequest builds a request for path (resolved as BaseURL documents) with
// the Client's default headers.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, _, err := c.newRequest(ctx, method, path, body)
	return req, err
}

// newRequest is NewRequest, and whether the URL is path appended to
// BaseURL's text.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (req *http.Request, onBase bool, err error) {
	u, onBase, err := c.resolve(path)
	if err != nil {
		return nil, false, err
	}
	req, err = http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, false, fmt.Errorf("authrefresh: %s %s: %w", method, path, err)
	}
	for k, v := range c.Header {
		// Shared, not copied: capped at its length, so an Add on the request
		// appends to a new array and never writes into c.Header.
		req.Header[k] = v[:len(v):len(v)]
	}
	return req, onBase, nil
}

// Do sends a request through the Client's HTTP client, within the Client's
// Timeout, and returns the answer whatever its status; the caller closes its
// body, which must be read before the Timeout ends.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := c.withTimeout(req.Context())
	if ctx == req.Context() { // no deadline of ours to release
		return c.send(req)
	}
	resp, err := c.send(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// send sends req through HTTPClient (or a plain client around Transport), the
// token going only to BaseURL's origin.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	if c.BaseURL == nil || req.URL == nil || !sameOrigin(req.URL, c.BaseURL) {
		req = req.WithContext(WithoutAuth(req.Context()))
	}
	return c.deliver(req)
}

// deliver sends req through HTTPClient (or a plain client around
// Transport), as it is.
func (c *Client) deliver(req *http.Request) (*http.Response, error) {
	if c.HTTPClient != nil {
		return c.HTTPClient.Do(req)
	}
	if c.Transport == nil {
		closeBody(req)
		return nil, errors.New("authrefresh: Client has neither HTTPClient nor Transport; create it with NewClient")
	}
	return (&http.Client{Transport: c.Transport}).Do(req)
}

// cancelOnClose releases a call's timeout when its answer is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// resolve makes path absolute, as BaseURL documents. A plain relative path
// (no dot segment, no scheme-like first segment) is appended to the base URL
// as text, which is what ResolveReference would give, without parsing it
// twice: http.NewRequest parses the result anyway.
func (c *Client) resolve(path string) (u string, onBase bool, err error) {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path, false, nil
	}
	base := c.BaseURL
	if base == nil {
		return "", false, errors.New("authrefresh: Client.BaseURL is not set; create the Client with NewClient")
	}
	path = strings.TrimLeft(path, "/")
	if b := c.baseOf(base); b.plain && plainPath(path) {
		return b.text + path, true, nil
	}
	ref, err := url.Parse(path)
	if err != nil {
		return "", false, fmt.Errorf("authrefresh: invalid path %q", path)
	}
	if ref.Scheme != "" || ref.Host != "" {
		return "", false, fmt.Errorf("authrefresh: invalid path %q", path)
	}
	return base.ResolveReference(ref).String(), false, nil
}

// plainBase reports whether a path can be appended to u's text: u's path
// ends in "/" and is itself plain (see plainPath), and nothing follows it
// (query, fragment) nor is there an opaque part.
func plainBase(u *url.URL) bool {
	p := u.EscapedPath()
	return u.Opaque == "" && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" &&
		strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/") && plainPath(strings.TrimSuffix(p[1:], "/"))
}

// plainPath reports whether p, appended to a base URL ending in "/", means
// exactly what resolving it gives: its path part is made only of RFC 3986
// path characters without percent-encoding (so nothing is decoded or
// re-encoded differently), has no "." or ".." segment to remove, and no ":"
// in its first segment (which would read as a scheme). Anything else takes
// url.ResolveReference.
func plainPath(p string) bool {
	end := strings.IndexAny(p, "?#")
	if end < 0 {
		end = len(p)
	}
	segStart, colonInFirst := 0, false
	for i := 0; i <= end; i++ {
		if i == end || p[i] == '/' {
			if seg := p[segStart:i]; seg == "." || seg == ".." {
				return false
			}
			if segStart == 0 && colonInFirst {
				return false
			}
			segStart = i + 1
			continue
		}
		switch c := p[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=@", c) >= 0:
		case c == ':':
			colonInFirst = colonInFirst || segStart == 0
		default:
			return false
		}
	}
	return true
}
