package upstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startForwarder serves f on a loopback port, forwarding to base through
// this package's Transport unless f has one, until the test ends; serve,
// if not nil, is the server's handler, calling f itself.
func startForwarder(t *testing.T, base string, f *Forwarder, serve http.HandlerFunc) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(base)
	if f.Transport == nil {
		f.Transport = newTestTransport(t, base)
	}
	f.Rewrite = func(out, in *http.Request) {
		out.URL.Scheme, out.URL.Host, out.Host = target.Scheme, target.Host, target.Host
	}
	if f.ErrorHandler == nil {
		f.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}
	if serve == nil {
		serve = func(w http.ResponseWriter, r *http.Request) { f.Forward(r.Context(), w, r) }
	}
	srv := httptest.NewServer(serve)
	t.Cleanup(srv.Close)
	return srv
}

// The headers of one connection (RFC 9110 §7.6.1: the hop-by-hop ones and
// those a Connection header names), a client's Forwarded and X-Forwarded-*
// and the dropped ones never cross, either way; the rest does, and the
// incoming request is left as it came.
func TestForwardHeaders(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(api.Close)
	var served atomic.Bool
	f := &Forwarder{Drop: []string{"Cookie", "X-Csrf"}, DropAnswer: []string{"Set-Cookie"}}
	fwd := startForwarder(t, api.URL, f, func(w http.ResponseWriter, r *http.Request) {
		before := r.Header.Clone()
		f.Forward(r.Context(), w, r)
		if !maps.EqualFunc(before, r.Header, slices.Equal) {
			t.Errorf("the incoming header changed: %v → %v", before, r.Header)
		}
		served.Store(true)
	})
	req, _ := http.NewRequest(http.MethodGet, fwd.URL+"/x", nil)
	for k, v := range map[string]string{
		"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic c2VjcmV0",
		"Te": "trailers, deflate", "Forwarded": "for=10.0.0.1", "X-Forwarded-For": "10.0.0.1", "X-Forwarded-Host": "evil",
		"X-Forwarded-Proto": "https", "Cookie": "session=secret", "X-Csrf": "1", "X-Keep": "kept", "Upgrade-Insecure-Requests": "1",
		"User-Agent": "", // none: the forwarder sends none either, rather than Go's
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got http.Header
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	delete(got, "Accept-Encoding") // the test client's own
	want := http.Header{"X-Keep": {"kept"}, "Te": {"trailers"}, "User-Agent": {""}, "Upgrade-Insecure-Requests": {"1"}}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("the API got %v; want %v", got, want)
	}
	if !served.Load() {
		t.Fatal("the forwarder's handler did not run")
	}

	// The answer's way back.
	api2 := rawUpstream(t, "HTTP/1.1 200 OK\r\nConnection: X-Answer-Hop\r\nX-Answer-Hop: 1\r\nKeep-Alive: timeout=5\r\n"+
		"Proxy-Authenticate: Basic\r\nSet-Cookie: api=1\r\nX-Answer: kept\r\nContent-Length: 2\r\n\r\nok", false)
	resp, err = http.Get(startForwarder(t, api2, &Forwarder{DropAnswer: []string{"Set-Cookie"}}, nil).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, k := range []string{"X-Answer-Hop", "Keep-Alive", "Proxy-Authenticate", "Set-Cookie"} {
		if v := resp.Header.Values(k); v != nil {
			t.Errorf("the client got %s: %q", k, v)
		}
	}
	if resp.Header.Get("X-Answer") != "kept" {
		t.Errorf("the client lost X-Answer: %v", resp.Header)
	}
}

// A query net/http's server and the upstream could read differently (a
// semicolon, a bad escape) goes as httputil.ReverseProxy sends it; any
// other goes as it came.
func TestForwardQuery(t *testing.T) {
	for _, q := range []string{"", "a=1&b=2", "a=1;b=2", "a=%zz&b=2", "a=%2", "q=caf%C3%A9&x", "a=1&a=2;c=%41"} {
		if got, want := cleanQuery(q), reverseProxyQuery(q); got != want {
			t.Errorf("%q went as %q; httputil.ReverseProxy sends %q", q, got, want)
		}
	}
}

// FuzzCleanQuery: whatever the query, it goes as httputil.ReverseProxy
// would send it.
func FuzzCleanQuery(f *testing.F) {
	for _, q := range []string{"a=1;b=2", "a=%zz", "x=%4", "a=1&b=%41%42", ";;", "%"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if got, want := cleanQuery(q), reverseProxyQuery(q); got != want {
			t.Errorf("%q went as %q; httputil.ReverseProxy sends %q", q, got, want)
		}
	})
}

// reverseProxyQuery is the query httputil.ReverseProxy sends for q.
func reverseProxyQuery(q string) string {
	var sent string
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { sent = pr.Out.URL.RawQuery },
		Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			return nil, errors.New("not sent")
		}),
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) {},
	}
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	req.URL.RawQuery = q
	rp.ServeHTTP(httptest.NewRecorder(), req)
	return sent
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An answer of unknown length (server-sent events) reaches the client as it
// comes: the first event is read while the API still holds the second.
func TestForwardStreams(t *testing.T) {
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: 2\n\n")
	}))
	t.Cleanup(api.Close)
	fwd := startForwarder(t, api.URL, &Forwarder{}, nil)
	// Bounded: unflushed, the first event would never come.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fwd.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	close(release)
	if err != nil || first != "data: 1\n" {
		t.Fatalf("first event: %q %v", first, err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: 2\n\n" {
		t.Fatalf("the rest: %q %v", rest, err)
	}
}

// An answer's trailers follow its body, announced or not.
func TestForwardTrailers(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
	}))
	t.Cleanup(api.Close)
	fwd := startForwarder(t, api.URL, &Forwarder{}, nil)
	resp, err := http.Get(fwd.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "body" {
		t.Fatalf("body %q %v", body, err)
	}
	if resp.Trailer.Get("X-Sum") != "42" || resp.Trailer.Get("X-Late") != "yes" {
		t.Errorf("trailers %v; want X-Sum: 42 and X-Late: yes", resp.Trailer)
	}
}

// An answer that breaks in the middle is cut off at the client too: it
// must not look like a whole answer.
func TestForwardBrokenAnswer(t *testing.T) {
	// A chunk, then the connection closed without the last chunk.
	api := rawUpstream(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true)
	fwd := startForwarder(t, api, &Forwarder{}, nil)
	resp, err := http.Get(fwd.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the client read %q as a whole answer", body)
	}
}

// A request body goes with its length; a request with none goes with
// none.
func TestForwardBody(t *testing.T) {
	api := startEchoUpstream(t)
	fwd := startForwarder(t, api.URL, &Forwarder{}, nil)
	for _, c := range []struct{ method, body, want string }{
		{http.MethodPost, `{"name":"x"}`, `POST /x cl=12 te=[] auth="" body={"name":"x"}`},
		{http.MethodGet, "", `GET /x cl=0 te=[] auth="" body=`},
		{http.MethodPost, "", `POST /x cl=0 te=[] auth="" body=`},
	} {
		req, _ := http.NewRequest(c.method, fwd.URL+"/x", strings.NewReader(c.body))
		status, got := roundTrip(t, http.DefaultTransport, req)
		if status != 200 || got != c.want {
			t.Errorf("%s %q: %d %q; want %q", c.method, c.body, status, got, c.want)
		}
	}
}

// An upgrade goes to the fallback with the outgoing context; a failure
// and an answer not asked for go to the error handler.
func TestForwardFallbackAndErrors(t *testing.T) {
	type key struct{}
	var fellBack, failed atomic.Value
	f := &Forwarder{
		Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fellBack.Store(r.Context().Value(key{}))
			w.WriteHeader(http.StatusTeapot)
		}),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			failed.Store(r.Context().Value(key{}).(string) + ": " + err.Error())
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	api := rawUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n", true)
	fwd := startForwarder(t, api, f, func(w http.ResponseWriter, r *http.Request) {
		f.Forward(context.WithValue(r.Context(), key{}, "outgoing"), w, r)
	})
	req, _ := http.NewRequest(http.MethodGet, fwd.URL+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if status, _ := roundTrip(t, http.DefaultTransport, req); status != http.StatusTeapot || fellBack.Load() != "outgoing" {
		t.Errorf("upgrade: %d, fallback saw %v", status, fellBack.Load())
	}
	req, _ = http.NewRequest(http.MethodGet, fwd.URL+"/plain", nil)
	if status, _ := roundTrip(t, http.DefaultTransport, req); status != http.StatusBadGateway {
		t.Errorf("an unasked 101: %d", status)
	}
	if msg, _ := failed.Load().(string); !strings.HasPrefix(msg, "outgoing: ") || !strings.Contains(msg, "101") {
		t.Errorf("the error handler saw %q", msg)
	}
}
