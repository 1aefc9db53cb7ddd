package authrefresh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/authrefresh/authrefresh/oauth"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
)

// A whole session's life — login, refresh-ahead, a revocation refused and
// replayed, a Refresher that panics quoting the token, one that returns an
// error quoting it, the session's end and a logout — with both the client's
// and the server's loggers at debug level. No token it ever held appears in
// a log line, an error string, a panic message, or any URL the server saw.
func TestSecretsNeverInLogsErrorsPanicsOrURLs(t *testing.T) {
	clock := fakeclock.New()
	var logs lockedBuffer
	debug := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := authserver.New(authserver.Config{AccessTTL: 2 * time.Second, Clock: clock.Now, PasswordCost: bcrypt.MinCost, Logger: debug})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var urls []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		urls = append(urls, r.RequestURI)
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	defer hs.Close()

	var secrets []string
	keep := func(tok *authrefresh.Token) {
		if tok != nil {
			mu.Lock()
			secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
			mu.Unlock()
		}
	}
	jr := &jsonauth.Refresher{URL: hs.URL + "/auth/refresh", LogoutURL: hs.URL + "/auth/logout"}
	var misbehave atomic.Int32 // 1: panic quoting the token, 2: error quoting it
	refresher := authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		switch misbehave.Swap(0) {
		case 1:
			panic("cannot refresh " + tok.RefreshToken + " for " + tok.AccessToken)
		case 2:
			return nil, authrefresh.Transient(fmt.Errorf("upstream refused %q", tok.RefreshToken))
		}
		return jr.Refresh(ctx, tok)
	})
	renewed := make(chan struct{}, 16)
	s := authrefresh.NewSession(nil, refresher, authrefresh.Options{Clock: clock.Now, Logger: debug, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		OnTokenChange: func(_, tok *authrefresh.Token) { keep(tok); renewed <- struct{}{} }})
	login, err := jsonauth.Login(context.Background(), nil, hs.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	login.IssuedAt, login.Expiry = clock.Now(), clock.Now().Add(2*time.Second)
	if err := s.Login(context.Background(), login); err != nil {
		t.Fatal(err)
	}
	<-renewed
	c, err := authrefresh.NewClient(hs.URL+"/api/v1/", s)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	step := func(what string, err error) {
		if err != nil {
			errs = append(errs, err)
		}
		t.Logf("%s: %v", what, err)
	}
	step("plain request", c.Get(context.Background(), "me", nil))
	clock.Advance(1600 * time.Millisecond) // refresh-ahead
	step("request starting refresh-ahead", c.Get(context.Background(), "me", nil))
	<-renewed
	srv.RevokeAccessTokens() // refused, refreshed, replayed
	step("request after revocation", c.Post(context.Background(), "data", map[string]any{"name": "p", "price": 1}, nil))
	clock.Advance(3 * time.Second)
	misbehave.Store(1)
	_, err = s.Token(context.Background())
	step("panicking refresher", err)
	clock.Advance(time.Second)
	misbehave.Store(2)
	_, err = s.Token(context.Background())
	step("refresher error quoting the token", err)
	clock.Advance(time.Second)
	step("recovered", c.Get(context.Background(), "me", nil))
	cur, _ := s.Token(context.Background())
	srv.RevokeRefreshToken(cur.RefreshToken)
	clock.Advance(3 * time.Second)
	step("session expired", c.Get(context.Background(), "me", nil))
	step("logout", s.Logout(context.Background()))
	step("after logout", c.Get(context.Background(), "me", nil))

	if len(errs) < 4 || !errors.Is(errs[len(errs)-1], authrefresh.ErrNotLoggedIn) {
		t.Fatalf("the scenario did not go as planned: %v", errs)
	}
	if !strings.Contains(logs.String(), "panic during refresh") || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Fatal("the logs lack the records this test relies on")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(secrets) < 8 {
		t.Fatalf("only %d secrets collected", len(secrets))
	}
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a token appears in the logs")
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
				t.Errorf("a token appears in the error %q", err)
			}
		}
		for _, u := range urls {
			if strings.Contains(u, secret) {
				t.Errorf("a token appears in the URL %q", u)
			}
		}
	}
}

// No token endpoint follows a redirect, whatever HTTPClient the caller gave:
// a 307 to another origin would carry the refresh token and the client
// secret there. The other origin's handler records what reached it.
func TestTokenEndpointsNeverFollowRedirects(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"attacker-token","expires_in":3600}`))
	}))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	callers := &http.Client{Timeout: 5 * time.Second} // follows redirects by default
	tok := &authrefresh.Token{AccessToken: "access-token-1", RefreshToken: "refresh-token-1"}
	ctx := context.Background()
	calls := map[string]func() error{
		"JSON refresh": func() error {
			_, err := (&jsonauth.Refresher{URL: redirecting.URL, HTTPClient: callers}).Refresh(ctx, tok)
			return err
		},
		"JSON logout": func() error {
			return (&jsonauth.Refresher{LogoutURL: redirecting.URL, HTTPClient: callers}).Revoke(ctx, tok)
		},
		"OAuth2 refresh": func() error {
			_, err := (&oauth.Config{TokenURL: redirecting.URL, ClientID: "c", ClientSecret: "client-secret", HTTPClient: callers}).Refresh(ctx, tok)
			return err
		},
		"OAuth2 revoke": func() error {
			return (&oauth.Config{RevocationURL: redirecting.URL, ClientID: "c", ClientSecret: "client-secret", HTTPClient: callers}).Revoke(ctx, tok)
		},
		"x/oauth2 refresh": func() error {
			cfg := &oauth2.Config{ClientID: "c", ClientSecret: "client-secret", Endpoint: oauth2.Endpoint{TokenURL: redirecting.URL}}
			_, err := oauth.ConfigRefresher(cfg, callers).Refresh(ctx, tok)
			return err
		},
		"password login": func() error {
			_, err := jsonauth.Login(ctx, callers, redirecting.URL, "user", "password")
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%s: %v; want an error naming the redirect", name, err)
		}
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("%d requests reached the redirect's target", n)
	}
	if callers.CheckRedirect != nil {
		t.Fatal("the caller's client was modified")
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
