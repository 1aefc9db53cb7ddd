package authserver

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server, *fakeclock.Clock) {
	t.Helper()
	c := fakeclock.New()
	if cfg.Clock == nil {
		cfg.Clock = c.Now
	}
	cfg.PasswordCost = bcrypt.MinCost
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 2 * time.Second
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs, c
}

func postJSON(t testing.TB, url, body string) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func login(t testing.TB, base string) (access, refresh string) {
	t.Helper()
	status, out, _ := postJSON(t, base+"/auth/login", `{"username":"demo","password":"demo-password"}`)
	if status != 200 {
		t.Fatalf("login: %d %v", status, out)
	}
	return out["access_token"].(string), out["refresh_token"].(string)
}

func refresh(t testing.TB, base, rt string) (int, map[string]any) {
	t.Helper()
	status, out, _ := postJSON(t, base+"/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, rt))
	return status, out
}

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
