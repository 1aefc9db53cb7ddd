package upstream

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
)

// Forwarder is a reverse proxy for the common exchange: what
// httputil.ReverseProxy does for a request and its answer, without the
// copies it makes of every request (the request and its header cloned, a
// client trace for 1xx answers put in its context, the hop-by-hop headers
// deleted from the clone one by one). The outgoing request is built once,
// its header holding only what goes upstream.
//
// A protocol upgrade (WebSocket) and a request with trailers go to
// Fallback, with the outgoing context: by default an httputil.ReverseProxy
// by the same rules (Transport, Rewrite, the drops, ErrorHandler).
type Forwarder struct {
	// Transport sends the outgoing requests.
	Transport http.RoundTripper
	// Rewrite sets the outgoing request's URL (scheme, host, path) and Host
	// from the incoming one. Its header is the incoming one's without the
	// hop-by-hop fields, Forwarded and X-Forwarded-*, and Drop.
	Rewrite func(out, in *http.Request)
	// Drop are request headers never forwarded, by their canonical names.
	Drop []string
	// DropAnswer are answer headers never returned, by their canonical names.
	DropAnswer []string
	// ErrorHandler answers a request the Transport failed: in carries the
	// outgoing context.
	ErrorHandler func(w http.ResponseWriter, in *http.Request, err error)
	// Fallback serves what Forward leaves out: upgrades, request trailers;
	// nil means a ReverseProxy by the same rules.
	Fallback http.Handler
	// Buffers recycles the buffers answers are copied through; nil makes
	// one per answer.
	Buffers *Buffers

	fallbackOnce sync.Once
}

// fallback is Fallback, or the ReverseProxy that stands for it.
func (f *Forwarder) fallback() http.Handler {
	f.fallbackOnce.Do(func() {
		if f.Fallback != nil {
			return
		}
		f.Fallback = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				f.Rewrite(pr.Out, pr.In)
				for _, k := range f.Drop {
					delete(pr.Out.Header, k)
				}
			},
			Transport: f.Transport, BufferPool: f.Buffers, ErrorHandler: f.ErrorHandler,
			ModifyResponse: func(resp *http.Response) error {
				for _, k := range f.DropAnswer {
					delete(resp.Header, k)
				}
				return nil
			},
		}
	})
	return f.Fallback
}

// Forward sends in upstream with the context ctx and copies the answer to
// w. It never changes in.
func (f *Forwarder) Forward(ctx context.Context, w http.ResponseWriter, in *http.Request) {
	if in.Header["Upgrade"] != nil || len(in.Trailer) > 0 {
		f.fallback().ServeHTTP(w, in.WithContext(ctx))
		return
	}
	// WithContext copies the request (its context is unexported), so the
	// one built here stays on the stack.
	out := (&http.Request{Method: in.Method, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		URL:    &url.URL{Path: in.URL.Path, RawPath: in.URL.RawPath, RawQuery: cleanQuery(in.URL.RawQuery)},
		Header: f.header(in.Header), Body: in.Body, ContentLength: in.ContentLength}).WithContext(ctx)
	f.Rewrite(out, in)

	resp, err := f.Transport.RoundTrip(out)
	if err == nil && resp.StatusCode < 200 {
		resp.Body.Close()
		err = fmt.Errorf("the upstream answered %s, which was not asked for", resp.Status)
	}
	if err != nil {
		f.ErrorHandler(w, in.WithContext(ctx), err)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	connection := resp.Header["Connection"] // names the answer's headers of this hop
	for k, vs := range resp.Header {
		if hopByHop(k) || contains(f.DropAnswer, k) || listsToken(connection, k) {
			continue
		}
		if h[k] == nil {
			h[k] = vs
		} else {
			h[k] = append(h[k], vs...)
		}
	}
	// An answer's trailers are announced, as net/http's Transport does not
	// keep the Trailer header.
	announced := len(resp.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h.Set("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if err := f.copyAnswer(w, resp, streamed(resp)); err != nil {
		if ctx.Err() == nil && in.Context().Value(http.ServerContextKey) != nil {
			// The answer broke in the middle: the connection is cut, so that
			// the client does not take what came for the whole answer.
			panic(http.ErrAbortHandler)
		}
		return
	}
	resp.Body.Close() // now, so that its trailers are read
	if len(resp.Trailer) == 0 {
		return
	}
	http.NewResponseController(w).Flush() // chunked, so that trailers can follow
	prefix := ""                          // trailers not announced are sent as net/http sends them
	if len(resp.Trailer) != announced {
		prefix = http.TrailerPrefix
	}
	for k, vs := range resp.Trailer {
		h[prefix+k] = append(h[prefix+k], vs...)
	}
}

// header is what of in goes upstream.
func (f *Forwarder) header(in http.Header) http.Header {
	connection := in["Connection"] // names the request's headers of this hop
	out := make(http.Header, len(in))
	for k, vs := range in {
		if hopByHop(k) || forwarded(k) || contains(f.Drop, k) || listsToken(connection, k) {
			continue
		}
		out[k] = vs // the values are shared: neither side changes them
	}
	if te := in["Te"]; te != nil && listsToken(te, "trailers") {
		out["Te"] = []string{"trailers"}
	}
	if out["User-Agent"] == nil {
		out["User-Agent"] = []string{""} // none, rather than Go's
	}
	return out
}

// copyAnswer copies resp's body to w, flushing each read when streamed.
func (f *Forwarder) copyAnswer(w http.ResponseWriter, resp *http.Response, streamed bool) error {
	buf := f.Buffers.Get()
	defer f.Buffers.Put(buf)
	rc := http.NewResponseController(w)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away: nothing more to tell it
			}
			if streamed {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// streamed reports whether an answer is flushed as it comes: one of
// unknown length, or server-sent events.
func streamed(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "text/event-stream"
}

// hopByHop reports whether k (canonical) is a header of one connection
// (RFC 9110 §7.6.1), never forwarded.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// forwarded reports whether k (canonical) says where a request came from:
// a client's own claim, not forwarded.
func forwarded(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

func contains(names []string, k string) bool {
	for _, n := range names {
		if n == k {
			return true
		}
	}
	return false
}

// listsToken reports whether a comma-separated header lists token, in any
// case, without allocating: a browser's every request says "Connection:
// keep-alive".
func listsToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if t, _, _ = strings.Cut(t, ";"); strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// cleanQuery is q as the upstream must read it: a query with a semicolon
// or a bad escape is one net/http's server and the upstream may read
// differently, so it goes as its parse encodes it again (as
// httputil.ReverseProxy does).
func cleanQuery(q string) string {
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return reencoded(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencoded(q)
			}
			i += 3
		default:
			i++
		}
	}
	return q
}

func reencoded(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
