package authserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The protected API: a product with a bad price is refused with the
// field's reason, a good one is created with its author; without a token
// the answer is 401 with a Bearer challenge.
func TestDataAPI(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{})
	access, _ := login(t, hs.URL)
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/data", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+access)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := post(`{"name":"Widget","price":-1}`); status != http.StatusBadRequest || out["details"].(map[string]any)["price"] != "must be a positive number" {
		t.Fatalf("bad price: %d %v", status, out)
	}
	if status, out := post(`{"name":"Widget","price":9.99}`); status != http.StatusCreated || out["name"] != "Widget" || out["owner"] != DemoUser {
		t.Fatalf("good product: %d %v", status, out)
	}
	resp, err := http.Post(hs.URL+"/api/v1/data", "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
