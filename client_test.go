package authrefresh_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/jsonauth"
)

// A 400 becomes an *APIError with the server's message and details.
func TestClientValidationErrorIsAPIError(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	c := e.Client(e.Session(nil, authrefresh.Options{}))
	var created authserver.Product
	if err := c.Post(context.Background(), "/data", map[string]any{"name": "ok", "price": 2.5}, &created); err != nil || created.ID != 1 || created.Name != "ok" {
		t.Fatalf("valid product: %+v %v", created, err)
	}
	err := c.Post(context.Background(), "data", map[string]any{"name": "", "price": -1}, nil)
	var apiErr *authrefresh.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %T %v, want *APIError", err, err)
	}
	if apiErr.StatusCode != 400 || apiErr.Message != "invalid product" || apiErr.Details["price"] == nil || apiErr.Details["name"] == nil {
		t.Fatalf("APIError = %+v", apiErr)
	}
}

// A 401 that survives the one replay is an APIError carrying the RFC 6750
// challenge's description, not a session expiry.
func TestClientPersistent401IsAPIError(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	c := e.Client(s)
	// Every token fails: the replay is refused too.
	bad := &authrefresh.Transport{Session: s, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r2 := r.Clone(r.Context())
		r2.Header.Set("Authorization", "Bearer garbage")
		return http.DefaultTransport.RoundTrip(r2)
	})}
	c.HTTPClient = &http.Client{Transport: bad}
	err := c.Get(context.Background(), "me", nil)
	var apiErr *authrefresh.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_token" {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, authrefresh.ErrSessionExpired) || s.Stats().Refusals != 1 {
		t.Fatalf("retries=%d err=%v", s.Stats().Refusals, err)
	}
	// The next refusal of that brand-new token does not refresh again: a
	// server that refuses every token must not turn each request into a refresh.
	for i := 0; i < 5; i++ {
		err = c.Get(context.Background(), "me", nil)
		var refused *authrefresh.NotReplayedError
		if !errors.As(err, &refused) || refused.StatusCode != 401 {
			t.Fatalf("request %d: got %v, want a NotReplayedError", i, err)
		}
	}
	if got := e.Auth.Counters().Refreshes; got != 1 {
		t.Fatalf("%d refreshes, want 1: the refusal loop was not broken", got)
	}
}

// A server that keeps refusing fresh tokens gets refreshes spaced like a
// backoff (MinBackoff, doubling, capped), not one per request and not a
// fixed lockout; once a token is accepted, a refusal refreshes at once again.
func TestRefusedAgainHoldGrowsThenResets(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Hour}) // no expiry-driven refresh in the way
	s := e.Session(nil, authrefresh.Options{MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
	c := e.Client(s)
	var broken atomic.Bool
	var revokeBefore atomic.Int32
	broken.Store(true)
	c.HTTPClient = &http.Client{Transport: &authrefresh.Transport{Session: s, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if revokeBefore.Load() > 0 && revokeBefore.Add(-1) == 0 {
			e.Auth.RevokeAccessTokens()
		}
		if broken.Load() {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer garbage") // the server refuses every token
		}
		return http.DefaultTransport.RoundTrip(r)
	})}}
	refreshes := func() uint64 { return e.Auth.Counters().Refreshes }
	get := func() error { return c.Get(context.Background(), "me", nil) }
	isRefused := func(err error) bool { var r *authrefresh.NotReplayedError; return errors.As(err, &r) }

	if err := get(); isRefused(err) || refreshes() != 1 { // refused, refreshed, replayed, refused
		t.Fatalf("first: %v, %d refreshes", err, refreshes())
	}
	prev := uint64(1)
	for _, step := range []struct {
		advance       time.Duration
		wantRefreshes uint64
	}{
		{0, 1},               // held for MinBackoff = 1 s
		{time.Second, 2},     // hold over: one more refresh; the next hold is 2 s
		{time.Second, 2},     // still held
		{time.Second, 3},     // over: refresh; next hold 4 s
		{3 * time.Second, 3}, // held
		{time.Second, 4},     // over
	} {
		e.Clock.Advance(step.advance)
		err := get()
		if got := refreshes(); got != step.wantRefreshes {
			t.Fatalf("after +%v: %d refreshes, want %d (%v)", step.advance, got, step.wantRefreshes, err)
		}
		if step.wantRefreshes == prev && !isRefused(err) {
			t.Fatalf("after +%v a held request got %v, want a NotReplayedError", step.advance, err)
		}
		prev = step.wantRefreshes
	}
	// The server heals; a token is accepted; a later refusal (a revocation)
	// refreshes at once, with no hold.
	broken.Store(false)
	e.Clock.Advance(10 * time.Second)
	if err := get(); err != nil {
		t.Fatal(err)
	}
	before := refreshes()
	e.Auth.RevokeAccessTokens()
	if err := get(); err != nil || refreshes() != before+1 {
		t.Fatalf("after a revocation: %v, %d refreshes (was %d)", err, refreshes(), before)
	}
	// Bad luck: the token a refusal brought is revoked before its replay.
	// That one is held for MinBackoff only (an accepted token came before).
	revokeBefore.Store(2) // before the second request from now: the replay
	e.Auth.RevokeAccessTokens()
	var apiErr *authrefresh.APIError
	if err := get(); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("replay revoked: %v", err)
	}
	if err := get(); !isRefused(err) {
		t.Fatalf("during the hold: %v, want a NotReplayedError", err)
	}
	e.Clock.Advance(time.Second)
	if err := get(); err != nil {
		t.Fatalf("after the hold: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A dead auth server is a transient error, not a logout.
func TestDeadAuthServerIsTransient(t *testing.T) {
	r := &jsonauth.Refresher{URL: "http://127.0.0.1:1/auth/refresh"}
	_, err := r.Refresh(context.Background(), &authrefresh.Token{RefreshToken: "r"})
	if !errors.Is(err, authrefresh.ErrRefreshTransient) {
		t.Fatalf("got %v", err)
	}
}

// An error answer cut mid-body is still an *APIError with its status, and
// says so: errors.Is sees the lost connection.
func TestClientErrorAnswerCutShort(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"inv`))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer hs.Close()
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	_ = s.Login(context.Background(), &authrefresh.Token{AccessToken: "t"})
	c, _ := authrefresh.NewClient(hs.URL, s)
	err := c.Post(context.Background(), "data", map[string]any{}, nil)
	var apiErr *authrefresh.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("got %v", err)
	}
}

// Client.Timeout bounds a JSON call and the body of a Do, as a context
// deadline; the server sees the call end. Negative means no timeout of its
// own.
func TestClientTimeout(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	stalled := make(chan struct{}, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/hang", func(w http.ResponseWriter, r *http.Request) {
		stalled <- struct{}{}
		<-r.Context().Done() // until the client gives up
	})
	mux.HandleFunc("/api/v1/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"partial":`))
		w.(http.Flusher).Flush()
		stalled <- struct{}{}
		<-r.Context().Done()
	})
	api := httptest.NewServer(mux)
	defer api.Close()
	c, err := authrefresh.NewClient(api.URL+"/api/v1/", s)
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 100 * time.Millisecond
	// A backstop, so that a Timeout not applied fails the test instead of
	// hanging it: while it is alive, a deadline error can only be the
	// Client's own.
	outer, cancelOuter := context.WithTimeout(context.Background(), time.Minute)
	defer cancelOuter()

	if err := c.Get(outer, "hang", nil); !errors.Is(err, context.DeadlineExceeded) || outer.Err() != nil {
		t.Fatalf("JSON call past its Timeout: %v (backstop: %v), want the Client's context.DeadlineExceeded", err, outer.Err())
	}
	<-stalled

	req, err := c.NewRequest(outer, http.MethodGet, "slow-body", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("Do: the headers came in time: %v", err)
	}
	<-stalled
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.DeadlineExceeded) || outer.Err() != nil {
		t.Fatalf("reading a body past the Timeout: %v (backstop: %v), want the Client's context.DeadlineExceeded", err, outer.Err())
	}
	resp.Body.Close()

	// A caller's own, shorter deadline wins; a negative Timeout leaves only it.
	c.Timeout = -1
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Get(ctx, "hang", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller's deadline: %v", err)
	}
	<-stalled
}

// The Client's default headers are shared with its requests, never copied,
// and never changed through them.
func TestClientDefaultHeadersStayPut(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	c := e.Client(e.Session(nil, authrefresh.Options{}))
	c.Header["X-Tags"] = make([]string, 1, 8) // spare capacity an Add could write into
	c.Header["X-Tags"][0] = "a"
	req, err := c.NewRequest(context.Background(), http.MethodGet, "me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("X-Tags", "b")
	req.Header.Add("Accept", "text/plain")
	req.Header.Set("X-Other", "1")
	if got := c.Header["X-Tags"]; len(got) != 1 || got[:2][1] != "" {
		t.Fatalf("Client.Header X-Tags changed through a request: %q", got[:2])
	}
	if got := c.Header.Values("Accept"); len(got) != 1 || got[0] != "application/json" || c.Header.Get("X-Other") != "" {
		t.Fatalf("Client.Header changed through a request: %v", c.Header)
	}
	if got := req.Header.Values("X-Tags"); len(got) != 2 || got[1] != "b" {
		t.Fatalf("request header: %q", got)
	}
}

// Paths resolve like axios: appended to the base URL's path, whatever the
// leading slash; dot segments, queries and absolute URLs as url.ResolveReference.
func TestClientResolvesPaths(t *testing.T) {
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	for _, tc := range []struct{ base, path, want string }{
		{"https://api.example.com/api/v1", "data", "https://api.example.com/api/v1/data"},
		{"https://api.example.com/api/v1/", "/data", "https://api.example.com/api/v1/data"},
		{"https://api.example.com/api/v1/", "data/42?fields=name&x=a+b", "https://api.example.com/api/v1/data/42?fields=name&x=a+b"},
		{"https://api.example.com/api/v1/", "../v2/data", "https://api.example.com/api/v2/data"},
		{"https://api.example.com/api/v1/", "./data", "https://api.example.com/api/v1/data"},
		{"https://api.example.com/api/v1/", "a%2Fb", "https://api.example.com/api/v1/a%2Fb"},
		{"https://api.example.com/a%2F", "c", "https://api.example.com/a%2F/c"},
		{"https://api.example.com/api/v1/", "https://other.example.com/x", "https://other.example.com/x"},
	} {
		c, err := authrefresh.NewClient(tc.base, s)
		if err != nil {
			t.Fatal(err)
		}
		req, err := c.NewRequest(context.Background(), http.MethodGet, tc.path, nil)
		if err != nil {
			t.Fatalf("%s + %s: %v", tc.base, tc.path, err)
		}
		if got := req.URL.String(); got != tc.want {
			t.Fatalf("%s + %s = %s, want %s", tc.base, tc.path, got, tc.want)
		}
	}
}

// The token goes to BaseURL's origin as it is at each call, also after
// BaseURL was changed, and never to another origin.
func TestClientOriginFollowsBaseURL(t *testing.T) {
	var got atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		w.Write([]byte(`{}`))
	}))
	defer api.Close()
	s := authrefresh.NewSession(authrefresh.NewMemoryStore(&authrefresh.Token{AccessToken: "the-access-token", Expiry: time.Now().Add(time.Hour)}), nil, authrefresh.Options{})
	c, err := authrefresh.NewClient("https://placeholder.invalid/api/", s)
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL, _ = url.Parse(api.URL + "/api/")
	if err := c.Get(context.Background(), "x", nil); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "Bearer the-access-token" {
		t.Fatalf("Authorization %q after changing BaseURL", got.Load())
	}
}

// A zero Client, or one with only a BaseURL, returns an error that says
// what is missing; it never panics.
func TestZeroClientIsAnError(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1/")
	for _, c := range []*authrefresh.Client{{}, {BaseURL: u}} {
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("zero Client panicked: %v", v)
				}
			}()
			if err := c.Get(context.Background(), "x", nil); err == nil {
				t.Error("zero Client: no error")
			}
		}()
	}
}

// The Transport's settings are the Client's: an API that answers an expired
// token with 403 is configured on the Client, without a type assertion.
func TestClientTransportSettings(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	e.Auth.SetExpiredStatus(http.StatusForbidden)
	s := e.Session(nil, authrefresh.Options{})
	c := e.Client(s)
	c.Transport.RetryStatuses = []int{http.StatusForbidden}
	e.Auth.RevokeAccessTokens()
	var me map[string]any
	if err := c.Get(context.Background(), "me", &me); err != nil {
		t.Fatalf("403 with RetryStatuses {403} on the Client: %v", err)
	}
	if st := s.Stats(); st.Refreshes != 1 || st.Refusals != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A call whose context can never be cancelled shares its deadline with the
// calls that start close to it: it still ends within its Timeout (plus a
// hundredth), keeps the caller's values, and a context derived from it (as
// net/http derives one) ends with it, with no goroutine left behind.
func TestClientSharedDeadline(t *testing.T) {
	type key struct{}
	var (
		mu        sync.Mutex
		deadlines []time.Time
		derived   []error
	)
	blocking := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Context().Value(key{}) != "trace-1" {
			t.Errorf("the caller's value is lost")
		}
		d, _ := req.Context().Deadline()
		child, cancel := context.WithCancel(req.Context())
		defer cancel()
		<-child.Done() // the shared deadline ends the derived context too
		mu.Lock()
		deadlines, derived = append(deadlines, d), append(derived, child.Err())
		mu.Unlock()
		return nil, req.Context().Err()
	})
	session := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	if err := session.Login(context.Background(), &authrefresh.Token{AccessToken: "access-token-1"}); err != nil {
		t.Fatal(err)
	}
	c, err := authrefresh.NewClient("http://127.0.0.1:1/api/", session)
	if err != nil {
		t.Fatal(err)
	}
	c.Transport.Base = blocking
	c.Timeout = 200 * time.Millisecond
	ctx := context.WithValue(context.Background(), key{}, "trace-1")
	began := time.Now()
	errs := authtest.RunParallel(4, func(int) error { return c.Get(ctx, "me", nil) })
	for _, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a call past its Timeout: %v, want context.DeadlineExceeded", err)
		}
	}
	for i, d := range deadlines {
		if left := d.Sub(began); left < c.Timeout-10*time.Millisecond || left > c.Timeout+c.Timeout/100+time.Second {
			t.Errorf("call %d: deadline %v after the start, want within [Timeout, 1.01 × Timeout] of it", i, left)
		}
		if !errors.Is(derived[i], context.DeadlineExceeded) {
			t.Errorf("call %d: the derived context ended with %v", i, derived[i])
		}
	}
}
