package authrefresh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// onlyReader hides every method but Read: no GetBody, no Seek.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// Every kind of body is replayed byte for byte after a refusal, except a
// stream longer than the replay buffer, which fails clearly.
func TestBodyReplayedExactlyAfterRefusal(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	tr := &authrefresh.Transport{Session: s, MaxReplayBuffer: 4 << 10}
	hc := &http.Client{Transport: tr}
	product := func(name string, size int) []byte {
		b, _ := json.Marshal(map[string]any{"name": name, "price": 9.5, "description": strings.Repeat("x", size)})
		return b
	}
	tmp := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(tmp, product("from-file", 100), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		body func() io.Reader
		want []byte
	}{
		{"bytes.Reader", func() io.Reader { return bytes.NewReader(product("bytes-reader", 1000)) }, product("bytes-reader", 1000)},
		{"strings.Reader", func() io.Reader { return strings.NewReader(string(product("strings-reader", 1000))) }, product("strings-reader", 1000)},
		{"plain reader", func() io.Reader { return onlyReader{bytes.NewReader(product("plain-reader", 3000))} }, product("plain-reader", 3000)},
		{"seeker (file)", nil, product("from-file", 100)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.Auth.Products())
			e.Auth.RevokeAccessTokens() // the first attempt is refused
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/data", nil)
			if tc.body != nil {
				req, _ = http.NewRequest(http.MethodPost, e.URL+"/api/v1/data", tc.body())
			} else {
				f, err := os.Open(tmp)
				if err != nil {
					t.Fatal(err)
				}
				req.Body = f // an *os.File: Seek, no GetBody
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d", resp.StatusCode)
			}
			products := e.Auth.Products()
			if len(products) != before+1 {
				t.Fatalf("%d products created, want exactly 1", len(products)-before)
			}
			got, _ := json.Marshal(map[string]any{"name": products[before].Name, "price": products[before].Price, "description": products[before].Description})
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("server stored a different payload:\n got %.80s\nwant %.80s", got, tc.want)
			}
		})
	}
	t.Run("stream over the limit", func(t *testing.T) {
		before := len(e.Auth.Products())
		refreshesBefore := e.Auth.Counters().Refreshes
		e.Auth.RevokeAccessTokens()
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/data", onlyReader{bytes.NewReader(product("too-big", 8000))})
		_, err := hc.Do(req)
		if !errors.Is(err, authrefresh.ErrBodyNotReplayable) {
			t.Fatalf("got %v, want ErrBodyNotReplayable", err)
		}
		var refused *authrefresh.NotReplayedError
		if !errors.As(err, &refused) || refused.StatusCode != http.StatusUnauthorized {
			t.Fatalf("want a NotReplayedError with status 401, got %v", err)
		}
		if len(e.Auth.Products()) != before {
			t.Fatal("a product was created from a refused request")
		}
		if e.Auth.Counters().Refreshes != refreshesBefore+1 {
			t.Fatal("the dead token was not refreshed for the next request")
		}
	})
}

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

// Tokens never appear in logs (at debug level) or in error strings.
func TestTokensNeverInLogsOrErrors(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := e.Session(nil, authrefresh.Options{Logger: logger})
	first, _ := s.Token(context.Background())
	secrets := []string{first.AccessToken, first.RefreshToken}
	c := e.Client(s)
	e.Clock.Advance(3 * time.Second)
	if err := c.Get(context.Background(), "me", nil); err != nil {
		t.Fatal(err)
	}
	second, _ := s.Token(context.Background())
	secrets = append(secrets, second.AccessToken, second.RefreshToken)
	logger.Info("tokens", "first", first, "second", second)
	var errStrings []string
	errStrings = append(errStrings, first.String(), second.String())
	e.Auth.RevokeRefreshToken(second.RefreshToken)
	e.Clock.Advance(3 * time.Second)
	err := c.Post(context.Background(), "data", map[string]any{"name": "x", "price": 1}, nil)
	if !errors.Is(err, authrefresh.ErrSessionExpired) {
		t.Fatalf("got %v", err)
	}
	errStrings = append(errStrings, err.Error())
	if logs.Len() == 0 {
		t.Fatal("nothing was logged; the test would prove nothing")
	}
	for _, secret := range secrets {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a token appears in the debug log")
		}
		for _, es := range errStrings {
			if strings.Contains(es, secret) {
				t.Fatalf("a token appears in %q", es)
			}
		}
	}
}

// With a filestore.Store, a new Session (a new process) on the same file uses the
// rotated refresh token, not the one it logged in with.
func TestFileStoreCarriesRotatedToken(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	path := filepath.Join(t.TempDir(), "token.json")
	first := e.Session(filestore.New(path), authrefresh.Options{})
	if _, err := first.Refresh(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v", err, info.Mode())
	}
	e.Clock.Advance(3 * time.Second)
	second := authrefresh.NewSession(filestore.New(path), e.Refresher(), authrefresh.Options{Clock: e.Clock.Now})
	if err := e.Client(second).Get(context.Background(), "me", nil); err != nil {
		t.Fatalf("second process: %v", err)
	}
	if got := e.Auth.Counters(); got.ReuseDetections != 0 || got.Refreshes != 2 {
		t.Fatalf("reuse=%d refreshes=%d: the second Session must use the rotated token", got.ReuseDetections, got.Refreshes)
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

// Per-request opt-outs: WithoutAuth sends no token; WithoutRefresh returns the
// refusal as it is.
func TestPerRequestOptOuts(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s}}
	req, _ := http.NewRequestWithContext(authrefresh.WithoutAuth(context.Background()), http.MethodGet, e.URL+"/api/v1/me", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="authrefresh"` {
		t.Fatalf("WithoutAuth: status %d challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	e.Auth.RevokeAccessTokens()
	req, _ = http.NewRequestWithContext(authrefresh.WithoutRefresh(context.Background()), http.MethodGet, e.URL+"/api/v1/me", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || e.Auth.Counters().Refreshes != 0 {
		t.Fatalf("WithoutRefresh: status %d, refreshes %d", resp.StatusCode, e.Auth.Counters().Refreshes)
	}
}

// Without refresh-ahead an expired token is still refreshed before sending.
func TestNoRefreshAheadStillRefreshesExpired(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{RefreshAhead: -1})
	c := e.Client(s)
	e.Clock.Advance(1900 * time.Millisecond)
	if err := c.Get(context.Background(), "me", nil); err != nil {
		t.Fatal(err)
	}
	if got := e.Auth.Counters(); got.Refreshes != 1 || got.Unauthorized401s() != 0 {
		t.Fatalf("refreshes=%d 401s=%d", got.Refreshes, got.Unauthorized401s())
	}
}

// A ReplayBudget caps what every replay copy holds at once: 200 concurrent
// 1-MiB streamed uploads through a 16-MiB budget never hold more than 16 MiB
// (the budget's own accounting), all give it back, and the uploads that found
// it spent still go through when the server accepts them, or fail as not
// replayable — never by using more memory — when it refuses them.
func TestReplayBudgetBoundsConcurrentUploads(t *testing.T) {
	const n, size, limit = 200, 1 << 20, 16 << 20
	for _, refuse := range []bool{false, true} {
		budget := authrefresh.NewReplayBudget(limit)
		s := authrefresh.NewSession(authrefresh.NewMemoryStore(&authrefresh.Token{AccessToken: "access-token-1", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}),
			authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
				return &authrefresh.Token{AccessToken: "access-token-2", Expiry: time.Now().Add(time.Hour)}, nil
			}), authrefresh.Options{})
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			status := http.StatusOK
			if refuse && r.Header.Get("Authorization") == "Bearer access-token-1" {
				status = http.StatusUnauthorized
			}
			return &http.Response{StatusCode: status, Body: http.NoBody, Request: r}, nil
		})
		tr := &authrefresh.Transport{Session: s, Base: base, MaxReplayBuffer: size, ReplayBudget: budget}
		var replayed, notReplayable atomic.Int32
		errs := authtest.RunParallel(n, func(int) error {
			req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/upload", onlyReader{io.LimitReader(zeros{}, size)})
			resp, err := tr.RoundTrip(req)
			switch {
			case errors.Is(err, authrefresh.ErrBodyNotReplayable):
				notReplayable.Add(1)
				return nil
			case err != nil:
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			replayed.Add(1)
			return nil
		})
		if k, first := authtest.CountErrors(errs); k > 0 {
			t.Fatalf("refuse=%v: %d uploads failed: %v", refuse, k, first)
		}
		if budget.Peak() > limit || budget.InUse() != 0 {
			t.Fatalf("refuse=%v: budget peak %d (limit %d), in use after %d", refuse, budget.Peak(), limit, budget.InUse())
		}
		if !refuse && replayed.Load() != n {
			t.Fatalf("accepted uploads: %d of %d went through", replayed.Load(), n)
		}
		t.Logf("refuse=%v: peak %d MiB of %d; %d succeeded, %d not replayable", refuse, budget.Peak()>>20, limit>>20, replayed.Load(), notReplayable.Load())
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
