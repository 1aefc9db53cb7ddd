package authrefresh_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// onlyReader hides every method but Read: no GetBody, no Seek.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// The caller's request is not modified and its body is closed.
func TestRoundTripLeavesCallerRequestAlone(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	hc := &http.Client{Transport: &authrefresh.Transport{Session: e.Session(nil, authrefresh.Options{})}}
	body := &closeRecorder{Reader: strings.NewReader(`{"name":"n","price":1}`)}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/data", body)
	req.Header.Set("X-Caller", "1")
	e.Auth.RevokeAccessTokens()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.Header.Get("Authorization") != "" || len(req.Header) != 1 {
		t.Fatalf("caller's header was modified: %v", req.Header)
	}
	if !body.closed() {
		t.Fatal("the request body was not closed")
	}
}

// Whatever the number of headers (the copy is made differently below and
// from eight), the request that goes out carries every header of the
// caller's plus Authorization, and the caller's header map is unchanged.
func TestRoundTripCopiesEveryHeaderCount(t *testing.T) {
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "access-token-for-header-test", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 6, 7, 8, 9, 20} {
		var sent http.Header
		rt := &authrefresh.Transport{Session: s, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent = r.Header
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		})}
		req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/x", nil)
		for i := range n {
			req.Header.Set(fmt.Sprintf("X-H%d", i), fmt.Sprint(i))
		}
		want := req.Header.Clone()
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(req.Header, want) {
			t.Fatalf("%d headers: the caller's header map changed: %v", n, req.Header)
		}
		if len(sent) != n+1 || sent.Get("Authorization") != "Bearer access-token-for-header-test" {
			t.Fatalf("%d headers: sent %d headers, Authorization %q", n, len(sent), sent.Get("Authorization"))
		}
		for k, v := range want {
			if !reflect.DeepEqual(sent[k], v) {
				t.Fatalf("%d headers: %s sent as %v, want %v", n, k, sent[k], v)
			}
		}
	}
}

type closeRecorder struct {
	io.Reader
	mu sync.Mutex
	c  bool
}

func (c *closeRecorder) Close() error { c.mu.Lock(); c.c = true; c.mu.Unlock(); return nil }
func (c *closeRecorder) closed() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.c }

// The token goes only to the configured origin: not to another origin, not
// across a redirect to another origin.
func TestTokenNeverLeavesItsOrigin(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	var mu sync.Mutex
	var foreignAuth []string
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		foreignAuth = append(foreignAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	defer foreign.Close()
	redirector := http.NewServeMux()
	redirector.Handle("/api/v1/", e.Auth)
	redirector.HandleFunc("/api/v1/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, foreign.URL+"/stolen", http.StatusFound)
	})
	api := httptest.NewServer(redirector)
	defer api.Close()

	s := e.Session(nil, authrefresh.Options{})
	c, err := authrefresh.NewClient(api.URL+"/api/v1/", s)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Get(context.Background(), "me", nil); err != nil {
		t.Fatalf("own origin: %v", err)
	}
	if err := c.Get(context.Background(), "away", nil); err != nil {
		t.Fatalf("redirected: %v", err)
	}
	if err := c.Get(context.Background(), foreign.URL+"/direct", nil); err != nil {
		t.Fatalf("foreign: %v", err)
	}
	// Even a Transport with no origin list never follows a redirect off-origin.
	open := &http.Client{Transport: &authrefresh.Transport{Session: s}}
	resp, err := open.Get(api.URL + "/api/v1/away")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(foreignAuth) != 3 {
		t.Fatalf("foreign server saw %d requests, want 3", len(foreignAuth))
	}
	for _, a := range foreignAuth {
		if a != "" {
			t.Fatal("the token reached a foreign origin")
		}
	}
}

// A refused status other than 401 (seed 004's 403) can be configured.
func TestRetryOn403(t *testing.T) {
	e := authtest.Start(t, authserver.Config{ExpiredStatus: 403})
	s := e.Session(nil, authrefresh.Options{})
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s, RetryStatuses: []int{401, 403}}}
	e.Auth.RevokeAccessTokens()
	resp, err := hc.Get(e.URL + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.Stats().Refusals != 1 {
		t.Fatalf("status %d retries %d", resp.StatusCode, s.Stats().Refusals)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A refusal is read from WWW-Authenticate too: error="invalid_token" on a
// 403 (or any status) refreshes and replays with the default statuses;
// insufficient_scope is the request's problem, not the token's.
func TestRetryOnInvalidTokenChallenge(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	first, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch {
		case r.URL.Path == "/scope":
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`)
			w.WriteHeader(http.StatusForbidden)
		case r.Header.Get("Authorization") == first.AuthorizationHeader():
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token", error_description="expired"`)
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer api.Close()
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s}}
	resp, err := hc.Get(api.URL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || requests.Load() != 2 || s.Stats().Refusals != 1 {
		t.Fatalf("invalid_token on 403: status %d after %d requests, %d refusals", resp.StatusCode, requests.Load(), s.Stats().Refusals)
	}
	resp, err = hc.Get(api.URL + "/scope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || requests.Load() != 3 || s.Stats().Refusals != 1 {
		t.Fatalf("insufficient_scope: status %d after %d requests, %d refusals", resp.StatusCode, requests.Load(), s.Stats().Refusals)
	}
}
