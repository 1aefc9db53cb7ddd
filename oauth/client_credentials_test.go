package oauth_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/oauth"
)

// A client-credentials Session needs no Login: the first Token acquires, 50
// concurrent callers share one acquisition, a second Session (another
// process) on the same store adopts it, a refused token is replaced once,
// and refresh-ahead acquires the next before expiry.
func TestClientCredentialsSession(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Minute})
	cc := &oauth.ClientCredentials{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Scopes: []string{"read"}}
	path := filepath.Join(t.TempDir(), filestore.KeyFileName(cc.StoreKey()))
	changed := make(chan struct{}, 100)
	a := authrefresh.NewSession(filestore.New(path), cc, authrefresh.Options{Clock: e.Clock.Now,
		OnTokenChange: func(_, _ *authrefresh.Token) { changed <- struct{}{} }})
	b := authrefresh.NewSession(filestore.New(path), cc, authrefresh.Options{Clock: e.Clock.Now})
	calls := func() uint64 { return e.Auth.Counters().Requests["/oauth/token"] }
	ctx := context.Background()
	var wg sync.WaitGroup
	toks := make([]*authrefresh.Token, 50)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			var err error
			if toks[i], err = s.Token(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if calls() != 1 {
		t.Fatalf("%d token requests for 50 callers in two Sessions on one store; want 1", calls())
	}
	for _, tok := range toks {
		if tok == nil || tok.AccessToken != toks[0].AccessToken || tok.RefreshToken != "" {
			t.Fatalf("tokens differ or carry a refresh token: %v", tok)
		}
	}

	// The API refuses it (revoked): replaced by a new one, once.
	e.Auth.RevokeAccessTokens()
	client := e.Client(a)
	if err := client.Get(ctx, "me", nil); err != nil {
		t.Fatal(err)
	}
	if calls() != 2 {
		t.Fatalf("%d token requests after one refusal; want 2", calls())
	}

	// Refresh-ahead: at 3/4 of the lifetime, one more acquisition.
	for len(changed) > 0 {
		<-changed
	}
	e.Clock.Advance(50 * time.Second)
	if _, err := a.Token(ctx); err != nil {
		t.Fatal(err)
	}
	<-changed // the acquisition ahead landed
	if calls() != 3 {
		t.Fatalf("after refresh-ahead: %d token requests; want 3", calls())
	}
}

// A client the server does not accept is a misconfiguration (retried after
// a backoff, so that fixing the secret heals it), with invalid_client in the
// error; an unreachable server is transient.
func TestClientCredentialsErrors(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	bad := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: "wrong"}, authrefresh.Options{BackoffWait: -1})
	_, err := bad.Token(context.Background())
	var re *authrefresh.RefreshError
	if !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || errors.Is(err, authrefresh.ErrSessionExpired) || !errors.As(err, &re) || re.Code != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
	down := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: "http://127.0.0.1:1/token", ClientID: "x", ClientSecret: "y"}, authrefresh.Options{BackoffWait: -1})
	if _, err := down.Token(context.Background()); !errors.Is(err, authrefresh.ErrRefreshTransient) {
		t.Fatalf("unreachable: %v", err)
	}
}

// Configurations that would get different tokens never share a store key;
// the order of scopes does not matter, nor does the secret.
func TestClientCredentialsStoreKey(t *testing.T) {
	base := oauth.ClientCredentials{TokenURL: "https://a.example/token", ClientID: "c", ClientSecret: "s", Scopes: []string{"a", "b"}}
	same := base
	same.Scopes, same.ClientSecret = []string{"b", "a"}, "rotated"
	if base.StoreKey() != same.StoreKey() {
		t.Fatal("scope order or the secret changed the key")
	}
	for _, other := range []func(c *oauth.ClientCredentials){
		func(c *oauth.ClientCredentials) { c.ClientID = "d" },
		func(c *oauth.ClientCredentials) { c.Scopes = []string{"a"} },
		func(c *oauth.ClientCredentials) { c.TokenURL = "https://b.example/token" },
		func(c *oauth.ClientCredentials) { c.Params = map[string][]string{"audience": {"https://api"}} },
	} {
		c := base
		other(&c)
		if c.StoreKey() == base.StoreKey() {
			t.Fatalf("%+v shares the key of %+v", c, base)
		}
	}
}
