package authserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The seeds' shapes work unchanged: seed 002 posts {"token"} to
// /auth/refresh-token, seed 001 reads accessToken and sends the bare token.
func TestSeedShapes(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{})
	_, rt := login(t, hs.URL)
	status, out, _ := postJSON(t, hs.URL+"/auth/refresh-token", fmt.Sprintf(`{"token":%q}`, rt))
	if status != 200 || out["accessToken"] == nil || out["accessToken"] != out["access_token"] {
		t.Fatalf("seed 002 refresh: %d %v", status, out)
	}
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
	req.Header.Set("authorization", out["accessToken"].(string)) // seed 001: no "Bearer "
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bare token: %d", resp.StatusCode)
	}
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
