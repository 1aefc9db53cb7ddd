package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoUpstream answers every request with its method, framing and body, and
// counts connections and requests.
type echoUpstream struct {
	*httptest.Server
	conns, requests atomic.Int32
	mu              sync.Mutex
	methods         []string
}

func startEchoUpstream(t *testing.T) *echoUpstream {
	t.Helper()
	u := &echoUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		u.mu.Lock()
		u.methods = append(u.methods, r.Method)
		u.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s cl=%d te=%v auth=%q body=%s", r.Method, r.URL.RequestURI(), r.ContentLength, r.TransferEncoding, r.Header.Get("Authorization"), body)
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func newTestTransport(t *testing.T, base string) *Transport {
	t.Helper()
	target, _ := url.Parse(base)
	tr := New(target, 8)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func roundTrip(t *testing.T, tr http.RoundTripper, req *http.Request) (int, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// Requests without a body or with a small one of known length, and HEAD
// answers, go out as HTTP/1.1 on one kept-alive connection; a stream and a
// large body go through net/http's Transport (one more connection).
func TestUpstreamFramesAndReuses(t *testing.T) {
	up := startEchoUpstream(t)
	tr := newTestTransport(t, up.URL)
	for i := 0; i < 20; i++ {
		req, _ := http.NewRequest("GET", up.URL+"/a?x=1", nil)
		req.Header.Set("Authorization", "Bearer t")
		if _, body := roundTrip(t, tr, req); body != `GET /a?x=1 cl=0 te=[] auth="Bearer t" body=` {
			t.Fatalf("GET: %s", body)
		}
		req, _ = http.NewRequest("POST", up.URL+"/p", strings.NewReader("known"))
		if _, body := roundTrip(t, tr, req); body != `POST /p cl=5 te=[] auth="" body=known` {
			t.Fatalf("POST: %s", body)
		}
		req, _ = http.NewRequest("PUT", up.URL+"/s", io.NopCloser(strings.NewReader("a stream")))
		if _, body := roundTrip(t, tr, req); body != `PUT /s cl=-1 te=[chunked] auth="" body=a stream` {
			t.Fatalf("stream: %s", body)
		}
		big := strings.Repeat("b", leanBodyMax+1)
		req, _ = http.NewRequest("POST", up.URL+"/big", strings.NewReader(big))
		if _, body := roundTrip(t, tr, req); body != fmt.Sprintf(`POST /big cl=%d te=[] auth="" body=%s`, len(big), big) {
			t.Fatalf("large POST: %.80s", body)
		}
		req, _ = http.NewRequest("POST", up.URL+"/empty", nil)
		if _, body := roundTrip(t, tr, req); body != `POST /empty cl=0 te=[] auth="" body=` {
			t.Fatalf("empty POST: %s", body)
		}
		req, _ = http.NewRequest("HEAD", up.URL+"/h", nil)
		if status, body := roundTrip(t, tr, req); status != 200 || body != "" {
			t.Fatalf("HEAD: %d %q", status, body)
		}
	}
	// The lean path keeps one connection; each of the 40 requests that went
	// through net/http's Transport had a connection of its own.
	if n, d := up.conns.Load(), tr.dials.Load(); n != 41 || d != 1 {
		t.Fatalf("%d connections at the upstream, %d dialed on the lean path for 120 sequential requests; want 41 and 1", n, d)
	}
}

// The upstream closing an idle connection (its keep-alive timeout) fails no
// request and sends none twice: a connection idle for a while is looked at
// before use, so even a POST goes out once on a new one; a GET found closed
// only when its answer should come is sent again; a POST in that case is not
// (the upstream might have acted on it), and says why.
func TestUpstreamIdleConnectionClosedByUpstream(t *testing.T) {
	up := startEchoUpstream(t)
	tr := newTestTransport(t, up.URL)
	get := func() *http.Request { r, _ := http.NewRequest("GET", up.URL+"/g", nil); return r }
	post := func() *http.Request {
		r, _ := http.NewRequest("POST", up.URL+"/p", strings.NewReader("once"))
		return r
	}
	roundTrip(t, tr, get())
	ageIdle := func() {
		tr.mu.Lock()
		for _, c := range tr.idle {
			c.idleSince = c.idleSince.Add(-2 * time.Second)
		}
		tr.mu.Unlock()
	}

	up.CloseClientConnections()
	ageIdle()
	before := up.requests.Load()
	if status, body := roundTrip(t, tr, post()); status != 200 || !strings.HasSuffix(body, "body=once") {
		t.Fatalf("POST after the upstream closed an idle connection: %d %s", status, body)
	}
	if got := up.requests.Load() - before; got != 1 {
		t.Fatalf("the POST reached the upstream %d times", got)
	}

	up.CloseClientConnections() // just used: not looked at, found closed when read
	if status, _ := roundTrip(t, tr, get()); status != 200 {
		t.Fatalf("GET on a connection closed by the upstream: %d", status)
	}

	up.CloseClientConnections()
	before = up.requests.Load()
	resp, err := tr.RoundTrip(post())
	if err == nil {
		resp.Body.Close()
		// The close raced the write and the upstream read the POST: fine,
		// as long as it was sent once.
	} else if !errors.Is(err, errStaleConn) || !strings.Contains(err.Error(), "cannot be sent again") && !strings.Contains(err.Error(), "closed an idle connection") {
		t.Fatalf("POST into a closing connection: %v", err)
	}
	if got := up.requests.Load() - before; got > 1 {
		t.Fatalf("the POST reached the upstream %d times", got)
	}
	if status, _ := roundTrip(t, tr, get()); status != 200 {
		t.Fatalf("after: %d", status)
	}
}

// A connection whose answer was not read to its end, or whose request was
// cancelled, is closed, never handed to the next request.
func TestUpstreamUnfinishedAnswersCloseTheConnection(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall" {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("part"))
			w.(http.Flusher).Flush()
			<-release
			return
		}
		w.Write(bytes.Repeat([]byte("x"), 64<<10))
	}))
	defer up.Close()
	defer close(release)
	tr := newTestTransport(t, up.URL)

	req, _ := http.NewRequest("GET", up.URL+"/big", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("a closed body still reads")
	}
	if n := len(tr.idle); n != 0 {
		t.Fatalf("%d idle connections after an answer closed half-read", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, "GET", up.URL+"/stall", nil)
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a cancelled answer read to its end")
	}
	resp.Body.Close()
	if n := len(tr.idle); n != 0 {
		t.Fatalf("%d idle connections after a cancelled answer", n)
	}
	dials := tr.dials.Load()
	req, _ = http.NewRequest("GET", up.URL+"/big", nil)
	if _, body := roundTrip(t, tr, req); len(body) != 64<<10 {
		t.Fatalf("next answer: %d bytes", len(body))
	}
	if tr.dials.Load() != dials+1 {
		t.Fatal("the next request did not get a new connection")
	}
}

// An upstream that answers an upload before reading it (a 401 for an
// expired token, a 413) and closes: the caller gets that answer, not a broken
// connection, so the proxy can refresh and replay.
func TestUpstreamEarlyAnswerToAnUpload(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "token expired", http.StatusUnauthorized)
	}))
	defer up.Close()
	tr := newTestTransport(t, up.URL)
	for _, size := range []int{10, leanBodyMax, 4 << 20} {
		req, _ := http.NewRequest("POST", up.URL+"/upload", bytes.NewReader(make([]byte, size)))
		if status, _ := roundTrip(t, tr, req); status != http.StatusUnauthorized {
			t.Fatalf("%d-byte upload: %d", size, status)
		}
	}
}

// rawUpstream answers each connection's first request with the bytes of
// answer, then closes if closeAfter, else reads on until the client closes.
func rawUpstream(t *testing.T, answer string, closeAfter bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, answer)
				if !closeAfter {
					io.Copy(io.Discard, c)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// Answers the proxy did not ask for, or too large to hold, are errors that
// say so; informational answers are passed over; Connection: close and
// HTTP/1.0 answers are not kept.
func TestUpstreamOddAnswers(t *testing.T) {
	cases := []struct {
		name, answer, want string
		kept               bool
	}{
		{"103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", true},
		{"an unasked 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "did not ask for", false},
		{"headers over the limit", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 4<<10) + "\r\n\r\n", "more than 2048 bytes of headers", false},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		{"to the end of the connection", "HTTP/1.1 200 OK\r\n\r\nuntil close", "until close", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "ok", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := rawUpstream(t, c.answer, c.want == "until close")
			tr := newTestTransport(t, base)
			tr.maxHeaderBytes = 2048
			req, _ := http.NewRequest("GET", base+"/", nil)
			resp, err := tr.RoundTrip(req)
			var got string
			if err != nil {
				got = err.Error()
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = string(b)
			}
			if !strings.Contains(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if kept := len(tr.idle) == 1; kept != c.kept {
				t.Fatalf("connection kept: %v, want %v", kept, c.kept)
			}
		})
	}
}

// Nothing of the caller's making can end a header line early: a value or a
// name with a line break, a method or path with a space, is refused before a
// byte is sent.
func TestWriteRequestRefusesInjection(t *testing.T) {
	bad := []func(*http.Request){
		func(r *http.Request) { r.Header["X-A"] = []string{"v\r\nX-Injected: 1"} },
		func(r *http.Request) { r.Header["X-A"] = []string{"v\nGET /other HTTP/1.1"} },
		func(r *http.Request) { r.Header["X-A: b\r\nX-C"] = []string{"v"} },
		func(r *http.Request) { r.Header["Authorization"] = []string{"Bearer a\x00b"} },
		func(r *http.Request) { r.Method = "GET /x HTTP/1.1\r\n" },
		func(r *http.Request) { r.Host = "h\r\nX: y" },
		func(r *http.Request) { r.URL.Opaque = "/a b" },
	}
	for i, mutate := range bad {
		req, _ := http.NewRequest("GET", "http://upstream.test/p", nil)
		mutate(req)
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeRequest(w, req); err == nil {
			t.Errorf("case %d: written: %q", i, out.String())
		}
		if out.Len() != 0 {
			t.Errorf("case %d: %d bytes flushed", i, out.Len())
		}
	}
}

// Whatever a caller puts in a header or path, writeRequest either refuses
// it or writes exactly one request that reads back the same: no second
// request or header can be smuggled through.
func FuzzWriteRequest(f *testing.F) {
	f.Add("GET", "/a", "X-A", "v", "")
	f.Add("POST", "/p?q=1", "Authorization", "Bearer x\r\nX: y", "body")
	f.Add("PUT", "/s", "X-A: b\r\n", "v", "stream")
	f.Fuzz(func(t *testing.T, method, path, name, value, body string) {
		req, err := http.NewRequest(method, "http://upstream.test"+path, nil)
		if err != nil {
			return
		}
		req.Header[name] = []string{value}
		if body != "" {
			req.Body = io.NopCloser(strings.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeRequest(w, req); err != nil {
			return
		}
		br := bufio.NewReader(bytes.NewReader(out.Bytes()))
		back, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("written but unreadable: %v\n%q", err, out.String())
		}
		got, _ := io.ReadAll(back.Body)
		if string(got) != body || back.Method != req.Method {
			t.Fatalf("read back %s %q, wrote %s %q", back.Method, got, req.Method, body)
		}
		if rest, _ := io.ReadAll(br); len(rest) != 0 {
			t.Fatalf("bytes after the request: %q", rest)
		}
		if framedHere(name) {
			return
		}
		if vs := back.Header.Values(name); len(vs) != 1 || vs[0] != strings.Trim(value, " \t") {
			t.Fatalf("header %q read back as %q, wrote %q", name, vs, value)
		}
	})
}

// An https upstream is spoken to as HTTP/1.1 over TLS, verified against the
// roots, on kept-alive connections.
func TestUpstreamTLS(t *testing.T) {
	var protos sync.Map
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos.Store(r.Proto, true)
		w.Write([]byte("secure"))
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	tr := newTestTransport(t, up.URL)
	req, _ := http.NewRequest("GET", up.URL+"/", nil)
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("a certificate from no trusted root was accepted")
	}
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	tr.tls.RootCAs = roots
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", up.URL+"/", nil)
		if status, body := roundTrip(t, tr, req); status != 200 || body != "secure" {
			t.Fatalf("%d %s", status, body)
		}
	}
	if d := tr.dials.Load(); d != 1 {
		t.Fatalf("%d TLS connections for 5 requests", d)
	}
	if _, ok := protos.Load("HTTP/1.1"); !ok {
		t.Fatal("not HTTP/1.1")
	}
}

// hostileAnswer is how a hostile or broken upstream answers the request
// numbered seq: the bytes it writes, and whether it then hangs up.
type hostileAnswer struct {
	name   string
	method string // the method the callers use
	answer func(seq string) string
	hangUp bool
}

// stray is a whole answer to request seq sent where none was asked for: a
// transport that reads it as the next request's answer hands one caller
// another's answer.
func stray(seq string) string {
	return "HTTP/1.1 200 OK\r\nX-Seq: " + seq + "\r\nContent-Length: 7\r\n\r\nnot you"
}

var hostileAnswers = []hostileAnswer{
	{name: "body on a HEAD answer", method: "HEAD", answer: func(s string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nContent-Length: 55\r\n\r\n" + stray(s)
	}},
	{name: "more bytes than Content-Length", method: "POST", answer: func(s string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nContent-Length: 2\r\n\r\nok" + stray(s)
	}},
	{name: "body on a 204", method: "GET", answer: func(s string) string {
		return "HTTP/1.1 204 No Content\r\nX-Seq: " + s + "\r\n\r\n" + stray(s)
	}},
	{name: "body on a 304", method: "GET", answer: func(s string) string {
		return "HTTP/1.1 304 Not Modified\r\nX-Seq: " + s + "\r\n\r\n" + stray(s)
	}},
	{name: "Connection: close, then more", method: "GET", answer: func(s string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok" + stray(s)
	}},
	{name: "chunked with trailers, then more", method: "POST", answer: func(s string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n" + stray(s)
	}},
	{name: "1xx answers, then the answer, then more", method: "GET", answer: func(s string) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nContent-Length: 2\r\n\r\nok" + stray(s)
	}},
	{name: "two Content-Lengths", method: "GET", answer: func(s string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nok" + stray(s)
	}},
	{name: "closed before the body's end", method: "GET", hangUp: true, answer: func(s string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nContent-Length: 10\r\n\r\nok"
	}},
	{name: "an honest upstream", method: "POST", answer: func(s string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nContent-Length: 2\r\n\r\nok"
	}},
}

// startHostileUpstream answers every request on 127.0.0.1 with
// a.answer(the request's X-Seq), the whole answer in one write, plus extra
// after it when extra is not nil. It returns its URL.
func startHostileUpstream(t testing.TB, a hostileAnswer, extra []byte) string {
	return startHostileUpstreamOn(t, a, extra, nil)
}

// startHostileUpstreamOn is startHostileUpstream over TLS when cfg is set;
// then a stray answer goes in a TLS record of its own, sent in the same
// write to the socket as the answer's record, so that it sits inside TLS,
// read off the socket but not yet decrypted. (Sent later, after the next
// request, stray bytes are that request's answer for any HTTP/1.1 client.)
func startHostileUpstreamOn(t testing.TB, a hostileAnswer, extra []byte, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if cfg != nil {
		scheme = "https"
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var conn net.Conn = c
				batch := &batchConn{Conn: c}
				if cfg != nil {
					conn = tls.Server(batch, cfg)
				}
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					seq := req.Header.Get("X-Seq")
					answer := a.answer(seq) + string(extra)
					batch.hold = true
					if i := strings.LastIndex(answer, stray(seq)); cfg != nil && i > 0 {
						if _, err := io.WriteString(conn, answer[:i]); err != nil {
							return
						}
						answer = answer[i:]
					}
					if _, err := io.WriteString(conn, answer); err != nil || batch.flush() != nil || a.hangUp {
						return
					}
				}
			}()
		}
	}()
	return scheme + "://" + ln.Addr().String()
}

// batchConn holds what is written while hold is set, and sends it in one
// write at flush: two TLS records reach the client together.
type batchConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	if b.hold {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

func (b *batchConn) flush() error {
	b.hold = false
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// exchangeOwnAnswers sends n requests numbered from first through rt, one
// after another, and reports how many were answered with another request's
// answer (mixed) and how many failed.
func exchangeOwnAnswers(rt http.RoundTripper, base, method string, first, n int) (mixed, failed int, example string) {
	for i := first; i < first+n; i++ {
		seq := fmt.Sprint(i)
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("payload " + seq)
		}
		req, _ := http.NewRequest(method, base+"/r", body)
		req.Header.Set("X-Seq", seq)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			failed++
			continue
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Seq"); got != seq {
			mixed++
			example = fmt.Sprintf("request %s got the answer marked %q (%s)", seq, got, resp.Status)
		} else if err != nil {
			failed++
		}
	}
	return mixed, failed, example
}

// A credential-holding proxy never hands one exchange's answer to another:
// whatever an upstream sends beyond an answer's framing, the connection is
// not used again. net/http's Transport runs beside it as the control; its
// mixes are counted (it checks for stray bytes on its connection's own
// reader goroutine, after the connection is already back in the pool: a
// request taking it at that moment reads them), the lean path's must be 0.
func TestUpstreamNeverMixesAnswers(t *testing.T) {
	const callers, each = 4, 25
	var controlMixed int
	log.SetOutput(io.Discard) // net/http's "Unsolicited response" lines
	defer log.SetOutput(os.Stderr)
	for _, a := range hostileAnswers {
		t.Run(a.name, func(t *testing.T) {
			base := startHostileUpstream(t, a, nil)
			lean := newTestTransport(t, base)
			control := &http.Transport{MaxIdleConnsPerHost: 8}
			defer control.CloseIdleConnections()
			for _, rt := range []struct {
				name string
				rt   http.RoundTripper
			}{{"lean", lean}, {"net/http", control}} {
				var mixed, failed atomic.Int32
				var example atomic.Value
				var wg sync.WaitGroup
				for c := 0; c < callers; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						m, f, ex := exchangeOwnAnswers(rt.rt, base, a.method, c*1000, each)
						mixed.Add(int32(m))
						failed.Add(int32(f))
						if ex != "" {
							example.Store(ex)
						}
					}()
				}
				wg.Wait()
				t.Logf("%s: %d of %d answers mixed, %d failed", rt.name, mixed.Load(), callers*each, failed.Load())
				if rt.name == "lean" && mixed.Load() != 0 {
					t.Errorf("%d answers went to the wrong request, e.g. %v", mixed.Load(), example.Load())
				}
				if rt.name == "net/http" {
					controlMixed += int(mixed.Load())
				}
			}
		})
	}
	t.Logf("net/http's Transport, the control: %d answers mixed in all", controlMixed)
}

// Over TLS, stray bytes may already be inside TLS (read off the socket,
// not yet decrypted) when the connection is next wanted: it is not reused.
func TestUpstreamNeverMixesAnswersOverTLS(t *testing.T) {
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS()
	cfg := cert.TLS.Clone()
	roots := x509.NewCertPool()
	roots.AddCert(cert.Certificate())
	cert.Close()
	for _, a := range hostileAnswers[:6] {
		base := startHostileUpstreamOn(t, a, nil, cfg)
		lean := newTestTransport(t, base)
		lean.tls.RootCAs = roots
		var wg sync.WaitGroup
		var mixed, failed atomic.Int32
		for c := 0; c < 3; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, f, ex := exchangeOwnAnswers(lean, base, a.method, c*1000, 20)
				mixed.Add(int32(m))
				failed.Add(int32(f))
				if ex != "" {
					t.Errorf("%s: %s", a.name, ex)
				}
			}()
		}
		wg.Wait()
		if mixed.Load() != 0 || failed.Load() != 0 {
			t.Errorf("%s over TLS: %d mixed, %d failed of 60", a.name, mixed.Load(), failed.Load())
		}
	}
}

// FuzzUpstreamAnswers is the differential check: the same hostile upstream,
// whatever bytes follow its answers, answers the lean path's callers with
// their own answer or an error, never another's; net/http's Transport gets
// the same input (its answers are not judged: the control's race is
// documented above, and fuzzing must not fail on it).
func FuzzUpstreamAnswers(f *testing.F) {
	for i := range hostileAnswers {
		f.Add(uint8(i), []byte(""))
		f.Add(uint8(i), []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	}
	f.Add(uint8(1), []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, which uint8, extra []byte) {
		a := hostileAnswers[int(which)%len(hostileAnswers)]
		base := startHostileUpstream(t, a, extra)
		target, _ := url.Parse(base)
		lean := New(target, 2)
		defer lean.CloseIdleConnections()
		if mixed, _, ex := exchangeOwnAnswers(lean, base, a.method, 0, 4); mixed != 0 {
			t.Fatalf("%s with %q after each answer: %s", a.name, extra, ex)
		}
		control := &http.Transport{}
		defer control.CloseIdleConnections()
		log.SetOutput(io.Discard)
		defer log.SetOutput(os.Stderr)
		exchangeOwnAnswers(control, base, a.method, 0, 4)
	})
}
