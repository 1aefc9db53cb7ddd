package authserver

import (
	"net/http"
	"testing"
)

func TestAlgorithmsSignAndVerify(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		_, hs, _ := newTestServer(t, Config{Algorithm: alg})
		access, _ := login(t, hs.URL)
		req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", alg, resp.StatusCode)
		}
	}
	if _, err := New(Config{Algorithm: "HS256"}); err == nil {
		t.Fatal("HS256 accepted")
	}
}
