package authrefresh_test

// Named fault cases: each names one way the world goes wrong and asserts
// what the caller sees and what the server recorded. Time is the fake clock
// shared with the reference server; durations only bound the runs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/jsonauth"
)

// restartable is the auth endpoint on its own listener, so it can go down
// (connections refused) while the API stays up, and come back on the same
// address.
type restartable struct {
	t       *testing.T
	handler http.Handler
	addr    string
	hs      *httptest.Server
}

func newRestartable(t *testing.T, h http.Handler) *restartable {
	r := &restartable{t: t, handler: h}
	r.hs = httptest.NewServer(h)
	r.addr = r.hs.Listener.Addr().String()
	t.Cleanup(func() {
		if r.hs != nil {
			r.hs.Close()
		}
	})
	return r
}

func (r *restartable) URL() string { return "http://" + r.addr }

func (r *restartable) down() {
	r.hs.CloseClientConnections()
	r.hs.Close()
	r.hs = nil
}

func (r *restartable) up() {
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("reopening %s: %v", r.addr, err)
	}
	r.hs = httptest.NewUnstartedServer(r.handler)
	r.hs.Listener.Close()
	r.hs.Listener = l
	r.hs.Start()
}

// The auth server is down for 30 s. Requests with a valid token are
// unaffected; requests that need a new one fail fast and transiently; nobody
// is logged out; the first request after it is back recovers, no restart.
func TestAuthServerDownThirtySecondsThenBack(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: 20 * time.Second})
	auth := newRestartable(t, e.Auth)
	s := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: auth.URL() + "/auth/refresh"},
		authrefresh.Options{Clock: e.Clock.Now, MaxBackoff: 5 * time.Second, BackoffWait: -1}) // fail fast: the outage is long
	if err := s.Login(context.Background(), e.Login()); err != nil {
		t.Fatal(err)
	}
	c := e.Client(s)
	post := func(name string) error {
		return c.Post(context.Background(), "data", map[string]any{"name": name, "price": 1}, nil)
	}

	e.Clock.Advance(10 * time.Second)
	auth.down()
	var ok, transient int
	for sec := 10; sec < 40; sec++ { // the outage: t = 10 s … 40 s
		err := post(fmt.Sprintf("outage-%d", sec))
		switch {
		case sec < 19 && err != nil: // the token is used until t = 19 s (expiry less a 5 % margin)
			t.Fatalf("t=%ds: a request with a valid token failed: %v", sec, err)
		case err == nil:
			ok++
		case errors.Is(err, authrefresh.ErrRefreshTransient):
			transient++
			if !strings.Contains(err.Error(), auth.addr) {
				t.Errorf("the error does not say which server is unreachable: %v", err)
			}
		default:
			t.Fatalf("t=%ds: %v, want a transient refresh error", sec, err)
		}
		e.Clock.Advance(time.Second)
	}
	if ok != 9 || transient != 21 {
		t.Fatalf("during the outage: %d ok, %d transient; want 9 and 21", ok, transient)
	}
	auth.up()
	e.Clock.Advance(5 * time.Second) // past the longest backoff
	if err := post("after"); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	got := e.Auth.Counters()
	st := s.Stats()
	if st.Rejections != 0 || got.ReuseDetections != 0 || got.ProductsCreated != 10 || got.Refreshes != 1 {
		t.Fatalf("rejections %d, reuse %d, products %d (want 10), refreshes %d (want 1)", st.Rejections, got.ReuseDetections, got.ProductsCreated, got.Refreshes)
	}
}

// The refresh endpoint accepts the connection and never answers. The
// refresh timeout ends the refresh; a waiter's own context ends its wait
// first; the session survives and heals when the endpoint does.
func TestRefreshEndpointHangs(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	e.Auth.SetRefreshLatency(time.Hour)
	started := make(chan struct{})
	var once sync.Once
	finished := make(chan struct{})
	jr := e.Refresher()
	refresher := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		once.Do(func() { close(started) })
		defer func() {
			select {
			case <-finished:
			default:
				close(finished)
			}
		}()
		return jr.Refresh(ctx, tok)
	})
	s := authrefresh.NewSession(nil, refresher, authrefresh.Options{Clock: e.Clock.Now, RefreshTimeout: time.Second})
	if err := s.Login(context.Background(), e.Login()); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3 * time.Second) // expired

	// A waiter whose context is cancelled leaves while the refresh still hangs.
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() { _, err := s.Token(ctx); waiter <- err }()
	<-started
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	select {
	case <-finished:
		t.Fatal("the refresh ended before the waiter left; the test proves nothing")
	default:
	}
	// A patient caller gets the refresh's own result: the timeout, transient.
	_, err := s.Token(context.Background())
	if !errors.Is(err, authrefresh.ErrRefreshTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a transient refresh error wrapping the deadline", err)
	}
	e.Auth.SetRefreshLatency(0)
	e.Clock.Advance(time.Minute) // past the backoff
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("after the endpoint healed: %v", err)
	}
	if st := s.Stats(); st.Rejections != 0 || st.Refreshes != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Every way a refresh answer can be wrong: a typed error of the right kind,
// never a panic, never a token in the message; transient answers leave the
// session alive, refusals end it.
func TestBadRefreshAnswers(t *testing.T) {
	huge := strings.Repeat(" ", 2<<20) + `{"access_token":"x"}`
	jwtish := "eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDJ9."
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        error // ErrRefreshTransient, ErrSessionExpired or nil (success)
		retryAfter  time.Duration
	}{
		{"truncated JSON", 200, "application/json", `{"access_token":"a`, nil, authrefresh.ErrRefreshTransient, 0},
		{"JSON array", 200, "application/json", `[]`, nil, authrefresh.ErrRefreshTransient, 0},
		{"access token a number", 200, "application/json", `{"access_token":5}`, nil, authrefresh.ErrRefreshTransient, 0},
		{"no access token", 200, "application/json", `{"refresh_token":"r2"}`, nil, authrefresh.ErrRefreshTransient, 0},
		{"expires_in a word", 200, "application/json", `{"access_token":"a2","expires_in":"soon"}`, nil, authrefresh.ErrRefreshTransient, 0},
		{"huge answer", 200, "application/json", huge, nil, authrefresh.ErrRefreshTransient, 0},
		{"HTML from a proxy", 200, "text/html", `<html>login page</html>`, nil, authrefresh.ErrRefreshTransient, 0},
		{"500 HTML", 500, "text/html", `<h1>oops</h1>`, nil, authrefresh.ErrRefreshTransient, 0},
		{"503 Retry-After", 503, "application/json", `{"error":"temporarily_unavailable"}`, map[string]string{"Retry-After": "7"}, authrefresh.ErrRefreshTransient, 7 * time.Second},
		{"429", 429, "application/json", `{"error":"slow_down"}`, nil, authrefresh.ErrRefreshTransient, 0},
		{"invalid_grant", 400, "application/json", `{"error":"invalid_grant","error_description":"revoked"}`, nil, authrefresh.ErrSessionExpired, 0},
		{"401 empty", 401, "", ``, nil, authrefresh.ErrSessionExpired, 0},
		{"403 HTML", 403, "text/html", `<h1>forbidden</h1>`, nil, authrefresh.ErrSessionExpired, 0},
		{"no refresh token keeps the old one", 200, "application/json", `{"access_token":"a2","expires_in":60}`, nil, nil, 0},
		{"form-encoded", 200, "application/x-www-form-urlencoded", `access_token=a2&refresh_token=r2&expires_in=60`, nil, nil, 0},
		{"JWT without expires_in", 200, "application/json", `{"access_token":"` + jwtish + `","refresh_token":"r2"}`, nil, nil, 0},
		{"expires_in zero", 200, "application/json", `{"access_token":"a2","refresh_token":"r2","expires_in":0}`, nil, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var presented atomic.Value
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var in struct {
					RefreshToken string `json:"refresh_token"`
				}
				_ = jsonDecode(r, &in)
				presented.Store(in.RefreshToken)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer hs.Close()
			clock := fakeclock.New()
			s := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: hs.URL}, authrefresh.Options{Clock: clock.Now, BackoffWait: -1}) // each answer once: no waiting for a second attempt
			old := &authrefresh.Token{AccessToken: "old-access-secret", RefreshToken: "old-refresh-secret", Expiry: clock.Now().Add(time.Second)}
			if err := s.Login(context.Background(), old); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Second)
			tok, err := s.Token(context.Background())
			if presented.Load() != "old-refresh-secret" {
				t.Fatalf("the refresh presented %v", presented.Load())
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if tok.RefreshToken == "" {
					t.Fatal("the refresh token was lost")
				}
				if !strings.Contains(tc.body, "refresh_token") && tok.RefreshToken != "old-refresh-secret" {
					t.Fatalf("an answer without a refresh token must keep the old one, got %q", tok.RefreshToken)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var re *authrefresh.RefreshError
			if !errors.As(err, &re) {
				t.Fatalf("%v is not a *RefreshError", err)
			}
			if re.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter %v, want %v", re.RetryAfter, tc.retryAfter)
			}
			if msg := err.Error(); strings.Contains(msg, "secret") || len(msg) > 600 {
				t.Errorf("error message leaks or floods: %.200q…", msg)
			}
			if tc.want == authrefresh.ErrRefreshTransient {
				clock.Advance(time.Minute) // past the backoff: the next attempt presents the same token
				_, _ = s.Token(context.Background())
				if presented.Load() != "old-refresh-secret" {
					t.Fatal("a transient failure lost the refresh token")
				}
			}
		})
	}
}

// A client clock 5 minutes off the server's: refresh-ahead works from the
// client's own clock when the server gives expires_in, and from the JWT's
// lifetime (exp − iat) when it does not — no 401s, no refresh storm.
func TestClockSkewFiveMinutes(t *testing.T) {
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		for _, withExpiresIn := range []bool{true, false} {
			t.Run(fmt.Sprintf("client %+v, expires_in %v", skew, withExpiresIn), func(t *testing.T) {
				e := authtest.Start(t, authserver.Config{AccessTTL: 2 * time.Second})
				clientNow := func() time.Time { return e.Clock.Now().Add(skew) }
				jr := &jsonauth.Refresher{URL: e.URL + "/auth/refresh"}
				if !withExpiresIn {
					jr.Fields.ExpiresIn = "not_sent" // the answer's expires_in is ignored: JWT claims only
				}
				renewed := make(chan struct{}, 100)
				s := authrefresh.NewSession(nil, jr, authrefresh.Options{Clock: clientNow, OnTokenChange: func(_, _ *authrefresh.Token) { renewed <- struct{}{} }})
				login := e.Login()
				login.IssuedAt, login.Expiry = clientNow(), clientNow().Add(2*time.Second)
				if err := s.Login(context.Background(), login); err != nil {
					t.Fatal(err)
				}
				<-renewed
				c := e.Client(s)
				for step := 0; step < 120; step++ { // 12 s, six lifetimes
					before := s.Stats().RefreshAheadStarts
					if err := c.Get(context.Background(), "me", nil); err != nil {
						t.Fatalf("at %v: %v", time.Duration(step)*100*time.Millisecond, err)
					}
					if s.Stats().RefreshAheadStarts > before {
						<-renewed
					}
					e.Clock.Advance(100 * time.Millisecond)
				}
				got := e.Auth.Counters()
				if got.Unauthorized401s() != 0 {
					t.Fatalf("%d requests refused", got.Unauthorized401s())
				}
				// Whole-second JWT dates make exp − iat up to a second longer
				// than the real lifetime, so without expires_in the count
				// may be lower; never a storm.
				if got.Refreshes < 5 || got.Refreshes > 9 {
					t.Fatalf("%d refreshes in six lifetimes, want about 8", got.Refreshes)
				}
			})
		}
	}
}

// The refresh's answer is lost after the server rotated the token. With a
// grace period the retry gets the same successor and the session goes on;
// without one the retry is a reuse, the family is revoked, and the session
// ends cleanly with ErrSessionExpired — never a hang or a half state.
func TestLostRefreshAnswer(t *testing.T) {
	for _, grace := range []time.Duration{0, 5 * time.Minute} {
		t.Run(fmt.Sprintf("grace %v", grace), func(t *testing.T) {
			e := authtest.Start(t, authserver.Config{GracePeriod: grace})
			var ended atomic.Int32
			s := e.Session(nil, authrefresh.Options{OnSessionExpired: func(error) { ended.Add(1) }})
			e.Clock.Advance(3 * time.Second)
			e.Auth.SetChaos(authserver.Chaos{Seed: 1, RefreshLostRate: 1})
			if _, err := s.Token(context.Background()); !errors.Is(err, authrefresh.ErrRefreshTransient) {
				t.Fatalf("lost answer: %v, want transient", err)
			}
			e.Auth.SetChaos(authserver.Chaos{})
			e.Clock.Advance(time.Minute) // past the backoff
			_, err := s.Token(context.Background())
			got := e.Auth.Counters()
			if grace > 0 {
				if err != nil || got.ReuseDetections != 0 || got.GraceReplays == 0 {
					t.Fatalf("with grace: %v, reuse %d, replays %d", err, got.ReuseDetections, got.GraceReplays)
				}
				if err := e.Client(s).Get(context.Background(), "me", nil); err != nil {
					t.Fatalf("the replayed successor does not work: %v", err)
				}
				return
			}
			if !errors.Is(err, authrefresh.ErrSessionExpired) || got.ReuseDetections != 1 || ended.Load() != 1 {
				t.Fatalf("without grace: %v, reuse %d, hook %d", err, got.ReuseDetections, ended.Load())
			}
		})
	}
}

// A connection that closes before any answer (a stale kept-alive connection)
// is retried once at once — not twice, and not on a refused dial.
func TestRefreshRetriesALostConnectionOnce(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	var drops, calls, drop atomic.Int32
	drop.Store(1)
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/refresh" && calls.Add(1) <= drop.Load() {
			drops.Add(1)
			panic(http.ErrAbortHandler)
		}
		e.Auth.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(wrapped)
	defer hs.Close()
	s := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: hs.URL + "/auth/refresh"}, authrefresh.Options{Clock: e.Clock.Now})
	if err := s.Login(context.Background(), e.Login()); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3 * time.Second)
	if _, err := s.Token(context.Background()); err != nil || drops.Load() != 1 {
		t.Fatalf("one dropped connection: %v (drops %d)", err, drops.Load())
	}
	calls.Store(0)
	drop.Store(2)
	e.Clock.Advance(3 * time.Second)
	if _, err := s.Token(context.Background()); !errors.Is(err, authrefresh.ErrRefreshTransient) || calls.Load() != 2 {
		t.Fatalf("two dropped connections: %v after %d attempts, want transient after 2", err, calls.Load())
	}
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
