package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/proctest"
	"github.com/authrefresh/authrefresh/oauth"
)

// startOIDCProvider runs interop/oidc-provider/server.mjs and returns its
// issuer. Without node or the npm install it skips, unless
// AUTHREFRESH_REQUIRE_INTEROP=1 (as .ci/run sets) makes that a failure.
func startOIDCProvider(t *testing.T, env ...string) string {
	t.Helper()
	return proctest.OIDCProvider(t, "oidc-provider", func(why string) { unavailable(t, why) }, env...)
}

// counting counts the requests to one path, and those with HTTP Basic.
type counting struct {
	path     string
	n, basic atomic.Int64
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == c.path {
		c.n.Add(1)
		if _, _, ok := req.BasicAuth(); ok {
			c.basic.Add(1)
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Discovery of oidc-provider, then client credentials with each client
// authentication method it was configured for: the Session needs no Login,
// 40 concurrent callers in two Sessions sharing one file cause one token
// request, a refused token is replaced once, and a wrong secret or scope
// is a misconfiguration (invalid_client, invalid_scope), not a lost session.
func TestOIDCProviderClientCredentials(t *testing.T) {
	issuer := startOIDCProvider(t)
	ctx := context.Background()
	md, err := oauth.Discover(ctx, nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != issuer || !strings.HasPrefix(md.TokenEndpoint, issuer) || md.JWKSURI == "" || md.RevocationEndpoint == "" {
		t.Fatalf("metadata %+v", md)
	}
	tokenPath := strings.TrimPrefix(md.TokenEndpoint, issuer)
	for _, c := range []struct {
		id, secret string
		auth       oauth.ClientAuth
	}{
		{"m2m-basic", "basic-secret-0123456789", oauth.ClientAuthBasic},
		{"m2m-post", "post-secret-0123456789", oauth.ClientAuthBody},
	} {
		t.Run(c.id, func(t *testing.T) {
			count := &counting{path: tokenPath}
			cc := &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: c.id, ClientSecret: c.secret,
				ClientAuth: c.auth, Scopes: []string{"api:read"}, HTTPClient: &http.Client{Transport: count, Timeout: 10 * time.Second}}
			path := filepath.Join(t.TempDir(), filestore.KeyFileName(cc.StoreKey()))
			a := authrefresh.NewSession(filestore.New(path), cc, authrefresh.Options{})
			b := authrefresh.NewSession(filestore.New(path), cc, authrefresh.Options{})
			var wg sync.WaitGroup
			toks := make([]*authrefresh.Token, 40)
			for i := range toks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := map[bool]*authrefresh.Session{true: a, false: b}[i%2 == 0]
					var err error
					if toks[i], err = s.Token(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if count.n.Load() != 1 {
				t.Fatalf("%d token requests for 40 callers; want 1", count.n.Load())
			}
			if basic := count.basic.Load() == 1; basic != (c.auth == oauth.ClientAuthBasic) {
				t.Fatalf("HTTP Basic used: %v, for %v", basic, c.auth)
			}
			for _, tok := range toks {
				if tok == nil || tok.AccessToken != toks[0].AccessToken || tok.Expiry.IsZero() {
					t.Fatalf("token %v", tok)
				}
			}
			if got := time.Until(toks[0].Expiry); got < 50*time.Second || got > 61*time.Second {
				t.Fatalf("expiry in %v; the server said 60 s", got)
			}
			// The API refuses the token: one new acquisition, a different token.
			next, err := a.Refused(ctx, toks[0])
			if err != nil || next.AccessToken == toks[0].AccessToken || count.n.Load() != 2 {
				t.Fatalf("after a refusal: %v %v, %d requests", next, err, count.n.Load())
			}
		})
	}

	bad := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "m2m-basic", ClientSecret: "wrong"}, authrefresh.Options{})
	_, err = bad.Token(ctx)
	var re *authrefresh.RefreshError
	if !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || !errors.As(err, &re) || re.Code != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
	unknownScope := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "m2m-post", ClientSecret: "post-secret-0123456789", ClientAuth: oauth.ClientAuthBody, Scopes: []string{"api:write"}}, authrefresh.Options{})
	if _, err := unknownScope.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || !errors.As(err, &re) || re.Code != "invalid_scope" {
		t.Fatalf("a scope the client may not have: %v", err)
	}
}

// private_key_jwt: the client holds only a P-256 key (the provider its
// public JWK); its assertions (a new jti each) get tokens, and another
// key's signature is invalid_client.
func TestOIDCProviderPrivateKeyJWT(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	pub, _ := key.PublicKey.ECDH()
	raw := pub.Bytes() // 0x04 ‖ X ‖ Y
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "client-key-1", "alg": "ES256", "use": "sig",
		"x": b64(raw[1:33]), "y": b64(raw[33:])}}})
	issuer := startOIDCProvider(t, "CLIENT_JWKS="+string(jwks))
	ctx := context.Background()
	md, err := oauth.Discover(ctx, nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	cc := &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "m2m-jwt", Scopes: []string{"api:read"},
		Key: &oauth.ClientKey{Signer: key, KeyID: "client-key-1"}}
	s := authrefresh.NewSession(nil, cc, authrefresh.Options{})
	tok, err := s.Token(ctx)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("private_key_jwt: %v", err)
	}
	if next, err := s.Refused(ctx, tok); err != nil || next.AccessToken == tok.AccessToken {
		t.Fatalf("a second assertion (a new jti): %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "m2m-jwt",
		Key: &oauth.ClientKey{Signer: other, KeyID: "client-key-1"}}, authrefresh.Options{})
	var re *authrefresh.RefreshError
	if _, err := forged.Token(ctx); !errors.As(err, &re) || re.Code != "invalid_client" {
		t.Fatalf("another key's assertion: %v", err)
	}
}

// A wrong issuer is a DiscoveryError that says what is wrong, not a guess:
// a path the provider does not serve, or its host by another name (the
// document then names the issuer it is for).
func TestOIDCProviderWrongIssuer(t *testing.T) {
	issuer := startOIDCProvider(t)
	for _, c := range []struct{ issuer, want string }{
		{issuer + "/tenant", "answered 404"},
		{strings.Replace(issuer, "127.0.0.1", "localhost", 1), `for the issuer "` + issuer + `"`},
	} {
		_, err := oauth.Discover(context.Background(), nil, c.issuer)
		var de *oauth.DiscoveryError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: got %v, want %q", c.issuer, err, c.want)
		}
	}
}
