package authserver

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzTarget answers a request in memory; no network.
func fuzzServer(f *testing.F) *Server {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	s, err := New(Config{PasswordCost: 4, LoginFailuresPerUser: -1, LoginFailuresPerIP: -1, AutoApproveUser: DemoUser, ClientKeys: map[string]crypto.PublicKey{"keyed": pub}})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

func serve(s *Server, method, path, ctype, body, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func FuzzJSONHandlers(f *testing.F) {
	s := fuzzServer(f)
	rec := serve(s, "POST", "/auth/login", "application/json", `{"username":"demo","password":"demo-password"}`, "")
	token := strings.Split(strings.Split(rec.Body.String(), `"access_token":"`)[1], `"`)[0]
	for _, seed := range []string{`{"username":"demo","password":"x"}`, `{"refresh_token":"abc"}`, `{"name":"a","price":1}`, `{"name":"","price":-1e309}`, `[`, `null`, "\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/auth/login", "/auth/refresh", "/auth/logout", "/api/v1/data"} {
			rec := serve(s, "POST", path, "application/json", body, "Bearer "+token)
			if rec.Code >= 500 {
				t.Fatalf("%s answered %d to %q: %s", path, rec.Code, body, rec.Body)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("%s answered non-JSON", path)
			}
		}
	})
}

func FuzzFormHandlers(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []string{"grant_type=password&username=demo&password=demo-password", "grant_type=refresh_token&refresh_token=x", "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret", "token=x&token_type_hint=refresh_token", "%%", "a=1&a=2",
		"grant_type=authorization_code&code=x&code_verifier=y&redirect_uri=http://127.0.0.1/cb&client_id=demo-client",
		"grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x&client_id=demo-client",
		"grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c",
		"response_type=code&client_id=demo-client&redirect_uri=http://127.0.0.1:1/cb&code_challenge=abc&code_challenge_method=S256&state=s"} {
		f.Add(seed, "")
		f.Add(seed, "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=")
	}
	f.Fuzz(func(t *testing.T, body, auth string) {
		for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/device_authorization"} {
			rec := serve(s, "POST", path, "application/x-www-form-urlencoded", body, auth)
			if rec.Code >= 500 {
				t.Fatalf("%s answered %d to %q", path, rec.Code, body)
			}
		}
		// The authorization endpoint reads the same parameters from its query.
		req := httptest.NewRequest("GET", "/oauth/authorize", nil)
		req.URL.RawQuery = body
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusFound && rec.Code != http.StatusBadRequest {
			t.Fatalf("/oauth/authorize answered %d to %q", rec.Code, body)
		}
	})
}

func FuzzBearerHeader(f *testing.F) {
	s := fuzzServer(f)
	f.Add("Bearer a.b.c")
	f.Add("bearer eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, header string) {
		rec := serve(s, "GET", "/api/v1/me", "", "", header)
		if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusOK {
			t.Fatalf("%q: %d", header, rec.Code)
		}
	})
}
