package oauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/oauth"
)

// scriptedTokenEndpoint answers every token request with status and body,
// and counts them.
func scriptedTokenEndpoint(t *testing.T, status int, header http.Header, body string) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func loggedIn(t *testing.T, tokenURL string, store authrefresh.Store) *authrefresh.Session {
	t.Helper()
	s := authrefresh.NewSession(store, &oauth.Config{TokenURL: tokenURL, ClientID: "c"}, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "access-0", RefreshToken: "refresh-0", IDToken: "id-0", Scope: "openid", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return s
}

// The answers real servers give, each read as what it means.
func TestRealServerRefreshAnswers(t *testing.T) {
	ctx := context.Background()

	t.Run("no refresh_token: the old one stays; refresh_expires_in, scope and extra fields kept", func(t *testing.T) {
		u, _ := scriptedTokenEndpoint(t, 200, nil, `{"access_token":"access-1","token_type":"bearer","expires_in":300,"refresh_expires_in":1800,"not-before-policy":0,"session_state":"abc"}`)
		s := loggedIn(t, u, nil)
		tok, err := s.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken != "refresh-0" || tok.IDToken != "id-0" || tok.Scope != "openid" || tok.AccessToken != "access-1" {
			t.Fatalf("token %+v", tok)
		}
		if life := tok.RefreshExpiry.Sub(tok.IssuedAt); life != 30*time.Minute {
			t.Fatalf("refresh expiry %v after issue; want 30m", life)
		}
		if string(tok.Extra["session_state"]) != `"abc"` || tok.Extra["access_token"] != nil {
			t.Fatalf("extra %v", tok.Extra)
		}
	})

	t.Run("no expires_in, opaque token: unknown lifetime, counted", func(t *testing.T) {
		u, _ := scriptedTokenEndpoint(t, 200, nil, `{"access_token":"opaque-access","refresh_token":"refresh-1"}`)
		s := loggedIn(t, u, nil)
		tok, err := s.Refresh(ctx)
		if err != nil || !tok.Expiry.IsZero() || s.Stats().UnknownExpiry != 1 {
			t.Fatalf("%v %v, unknown-expiry tokens %d", tok, err, s.Stats().UnknownExpiry)
		}
	})

	// A server that wants DPoP from a client without a key: the setting to
	// fix is named, and the session is kept.
	for _, body := range []string{`{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`, `{"error":"invalid_dpop_proof","error_description":"DPoP proof JWT is required"}`} {
		t.Run(body, func(t *testing.T) {
			u, n := scriptedTokenEndpoint(t, 400, http.Header{"Dpop-Nonce": {"n"}}, body)
			s := loggedIn(t, u, nil)
			_, err := s.Refresh(ctx)
			if !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || !strings.Contains(err.Error(), "DPoP key") || n.Load() != 1 {
				t.Fatalf("got %v after %d requests", err, n.Load())
			}
			if tok, err := s.Token(ctx); err != nil || tok.RefreshToken != "refresh-0" {
				t.Fatalf("the session after it: %v %v", tok, err)
			}
		})
	}

	for name, c := range map[string]struct {
		status int
		header http.Header
		body   string
		retry  time.Duration
	}{
		"400 temporarily_unavailable": {400, http.Header{"Retry-After": {"7"}}, `{"error":"temporarily_unavailable"}`, 7 * time.Second},
		"429 with Retry-After":        {429, http.Header{"Retry-After": {"3"}}, `{"error":"rate_limited"}`, 3 * time.Second},
		"Hydra 400 invalid_request":   {400, nil, `{"error":"invalid_request","error_description":"The request is missing a required parameter... multiple concurrent requests using the same token. Please retry the request."}`, 0},
	} {
		t.Run(name+" is transient", func(t *testing.T) {
			u, _ := scriptedTokenEndpoint(t, c.status, c.header, c.body)
			var ended atomic.Int64
			s := authrefresh.NewSession(nil, &oauth.Config{TokenURL: u}, authrefresh.Options{OnSessionExpired: func(error) { ended.Add(1) }})
			s.Login(ctx, &authrefresh.Token{AccessToken: "access-0", RefreshToken: "refresh-0", ExpiresIn: time.Hour})
			_, err := s.Refresh(ctx)
			var re *authrefresh.RefreshError
			if !errors.Is(err, authrefresh.ErrRefreshTransient) || errors.Is(err, authrefresh.ErrSessionExpired) || !errors.As(err, &re) || re.RetryAfter != c.retry || ended.Load() != 0 {
				t.Fatalf("got %v (retry after %v)", err, re.RetryAfter)
			}
			if tok, err := s.Token(ctx); err != nil || tok.RefreshToken != "refresh-0" {
				t.Fatalf("the session after it: %v %v", tok, err)
			}
		})
	}

	t.Run("401 invalid_client keeps the stored refresh token", func(t *testing.T) {
		u, _ := scriptedTokenEndpoint(t, 401, http.Header{"Www-Authenticate": {`Basic realm="x"`}}, `{"error":"invalid_client"}`)
		store := authrefresh.NewMemoryStore(nil)
		s := loggedIn(t, u, store)
		if _, err := s.Refresh(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || errors.Is(err, authrefresh.ErrSessionExpired) {
			t.Fatalf("got %v", err)
		}
		if kept, _ := store.Load(ctx); kept == nil || kept.RefreshToken != "refresh-0" {
			t.Fatalf("stored after invalid_client: %v", kept)
		}
	})

	t.Run("invalid_target is a setting to fix", func(t *testing.T) {
		u, _ := scriptedTokenEndpoint(t, 400, nil, `{"error":"invalid_target","error_description":"unknown audience"}`)
		s := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: u, ClientID: "c", ClientSecret: "s", Params: map[string][]string{"audience": {"x"}}}, authrefresh.Options{})
		if _, err := s.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("invalid_grant ends the session", func(t *testing.T) {
		u, _ := scriptedTokenEndpoint(t, 400, nil, `{"error":"invalid_grant","error_description":"Token is not active"}`)
		s := loggedIn(t, u, nil)
		if _, err := s.Refresh(ctx); !errors.Is(err, authrefresh.ErrSessionExpired) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("the same access token again: no refresh loop", func(t *testing.T) {
		u, refreshes := scriptedTokenEndpoint(t, 200, nil, `{"access_token":"access-0","refresh_token":"refresh-0","expires_in":3600}`)
		var calls atomic.Int64
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); w.WriteHeader(401) }))
		defer api.Close()
		s := loggedIn(t, u, nil)
		hc := &http.Client{Transport: &authrefresh.Transport{Session: s}}
		for range 10 {
			if resp, err := hc.Get(api.URL); err == nil {
				resp.Body.Close()
			}
		}
		if refreshes.Load() > 2 || calls.Load() > 20 {
			t.Fatalf("%d refreshes and %d API calls for 10 requests whose refreshed token is the refused one", refreshes.Load(), calls.Load())
		}
	})

	t.Run("a key that cannot sign its algorithm is a setting to fix", func(t *testing.T) {
		u, n := scriptedTokenEndpoint(t, 200, nil, `{"access_token":"a"}`)
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		s := authrefresh.NewSession(nil, &oauth.Config{TokenURL: u, ClientID: "c", Key: &oauth.ClientKey{Signer: key, Algorithm: "ES256"}}, authrefresh.Options{})
		s.Login(ctx, &authrefresh.Token{AccessToken: "access-0", RefreshToken: "refresh-0", ExpiresIn: time.Hour})
		if _, err := s.Refresh(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || n.Load() != 0 {
			t.Fatalf("got %v after %d requests", err, n.Load())
		}
	})
}
