package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/oauth"
)

// The reference server publishes only RFC 8414 metadata: oauth.Discover falls
// back to it and finds the endpoints and methods.
func TestDiscoverFallsBackToRFC8414(t *testing.T) {
	_, issuer := authtest.StartIssuer(t, authserver.Config{})
	md, err := oauth.Discover(context.Background(), nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != issuer || md.TokenEndpoint != issuer+"/oauth/token" || md.RevocationEndpoint != issuer+"/oauth/revoke" || md.JWKSURI == "" {
		t.Fatalf("metadata %+v", md)
	}
	if md.ClientAuthFor(true) != oauth.ClientAuthBasic || md.ClientAuthFor(false) != oauth.ClientAuthBody {
		t.Fatal("client auth chosen wrongly")
	}
}

// Every way an issuer URL can be wrong is an error that says so.
func TestDiscoverErrors(t *testing.T) {
	var srvURL string
	mux := http.NewServeMux()
	mux.HandleFunc("/other/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"https://accounts.example.com","token_endpoint":"https://accounts.example.com/token"}`))
	})
	mux.HandleFunc("/html/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<html>login</html>`))
	})
	mux.HandleFunc("/moved/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/.well-known/openid-configuration", http.StatusFound)
	})
	mux.HandleFunc("/broken/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/notoken/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + srvURL + `/notoken"}`))
	})
	mux.HandleFunc("/badurl/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + srvURL + `/badurl","token_endpoint":"/token"}`))
	})
	mux.HandleFunc("/oidc/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write([]byte(`{"issuer":"` + srvURL + `/oidc","token_endpoint":"` + srvURL + `/oidc/token","token_endpoint_auth_methods_supported":["client_secret_post"]}`))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	srvURL = hs.URL
	ctx := context.Background()
	for _, c := range []struct{ issuer, want string }{
		{hs.URL + "/other", `for the issuer "https://accounts.example.com"`},
		{hs.URL + "/html", "text/html, not JSON"},
		{hs.URL + "/moved", "never followed across a redirect"},
		{hs.URL + "/broken", "answered 500"},
		{hs.URL + "/notoken", "no token_endpoint"},
		{hs.URL + "/badurl", "token_endpoint is not an absolute http(s) URL"},
		{hs.URL + "/missing", "answered 404"},
		{"accounts.example.com", "must be an http(s) URL"},
		{hs.URL + "/?x=1", "without query"},
	} {
		_, err := oauth.Discover(ctx, nil, c.issuer)
		var de *oauth.DiscoveryError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a oauth.DiscoveryError saying %q", c.issuer, err, c.want)
		}
	}
	md, err := oauth.Discover(ctx, nil, hs.URL+"/oidc")
	if err != nil || md.TokenEndpoint != hs.URL+"/oidc/token" || md.ClientAuthFor(true) != oauth.ClientAuthBody {
		t.Fatalf("OpenID document: %+v %v", md, err)
	}
}

// FuzzParseProviderMetadata: any document is metadata or an error.
func FuzzParseProviderMetadata(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://a.example","token_endpoint":"https://a.example/t","scopes_supported":["openid"]}`))
	f.Add([]byte(`{"issuer":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = oauth.ParseProviderMetadata(data)
	})
}

// Metadata cannot send a client's secret and refresh token anywhere less
// safe than its issuer: plain http under an https issuer (to the network in
// clear, or to whoever listens on a local port), credentials in an
// endpoint's URL, plain http beyond this machine. A loopback http issuer
// stays allowed for development.
func TestDiscoverRefusesDowngrades(t *testing.T) {
	var base string
	metadata := map[string]string{
		"/tls-http":     `{"issuer":"%s/tls-http","token_endpoint":"http://127.0.0.1:9/token"}`,
		"/tls-userinfo": `{"issuer":"%s/tls-userinfo","token_endpoint":"%s/token","revocation_endpoint":"https://user:pass@127.0.0.1/revoke"}`,
		"/tls-ok":       `{"issuer":"%s/tls-ok","token_endpoint":"%s/token","jwks_uri":"%s/jwks"}`,
	}
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := metadata[strings.TrimSuffix(r.URL.Path, "/.well-known/openid-configuration")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(strings.ReplaceAll(doc, "%s", base)))
	}))
	defer hs.Close()
	base = hs.URL
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"http://` + r.Host + `/dev","token_endpoint":"http://user:pass@` + r.Host + `/token"}`))
	}))
	defer plain.Close()
	ctx := context.Background()
	for _, c := range []struct{ issuer, want string }{
		{hs.URL + "/tls-http", "token_endpoint is plain http under an https issuer"},
		{hs.URL + "/tls-userinfo", "revocation_endpoint carries credentials"},
		{plain.URL + "/dev", "token_endpoint carries credentials"},
		{"http://accounts.example.com", "plain http on a host other than this machine"},
		{"https://user:pw@accounts.example.com", "issuer carries credentials"},
	} {
		_, err := oauth.Discover(ctx, hs.Client(), c.issuer)
		var de *oauth.DiscoveryError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a oauth.DiscoveryError saying %q", c.issuer, err, c.want)
		}
	}
	if md, err := oauth.Discover(ctx, hs.Client(), hs.URL+"/tls-ok"); err != nil || md.TokenEndpoint != hs.URL+"/token" {
		t.Fatalf("an https issuer with https endpoints: %v", err)
	}
}
