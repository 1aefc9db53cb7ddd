package authrefresh_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// The reference server publishes only RFC 8414 metadata: Discover falls
// back to it and finds the endpoints and methods.
func TestDiscoverFallsBackToRFC8414(t *testing.T) {
	_, issuer := authtest.StartIssuer(t, authserver.Config{})
	md, err := authrefresh.Discover(context.Background(), nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != issuer || md.TokenEndpoint != issuer+"/oauth/token" || md.RevocationEndpoint != issuer+"/oauth/revoke" || md.JWKSURI == "" {
		t.Fatalf("metadata %+v", md)
	}
	if md.ClientAuthFor(true) != authrefresh.ClientAuthBasic || md.ClientAuthFor(false) != authrefresh.ClientAuthBody {
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
		_, err := authrefresh.Discover(ctx, nil, c.issuer)
		var de *authrefresh.DiscoveryError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a DiscoveryError saying %q", c.issuer, err, c.want)
		}
	}
	md, err := authrefresh.Discover(ctx, nil, hs.URL+"/oidc")
	if err != nil || md.TokenEndpoint != hs.URL+"/oidc/token" || md.ClientAuthFor(true) != authrefresh.ClientAuthBody {
		t.Fatalf("OpenID document: %+v %v", md, err)
	}
}

// FuzzParseProviderMetadata: any document is metadata or an error.
func FuzzParseProviderMetadata(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://a.example","token_endpoint":"https://a.example/t","scopes_supported":["openid"]}`))
	f.Add([]byte(`{"issuer":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = authrefresh.ParseProviderMetadata(data)
	})
}
