package authserver

import (
	"net/http"
	"strings"
	"testing"
)

func TestCORSPreflight(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{AllowedOrigins: []string{"http://localhost:3000"}})
	for origin, want := range map[string]int{"http://localhost:3000": 204, "http://evil.example": 403} {
		req, _ := http.NewRequest("OPTIONS", hs.URL+"/api/v1/data", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d", origin, resp.StatusCode)
		}
		if want == 204 && (resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")) {
			t.Fatalf("headers %v", resp.Header)
		}
	}
}
