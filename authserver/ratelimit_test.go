package authserver

import "testing"

func TestLoginRateLimited(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	for i := 0; i < 5; i++ {
		if status, _, _ := postJSON(t, hs.URL+"/auth/login", `{"username":"demo","password":"wrong"}`); status != 401 {
			t.Fatalf("attempt %d: %d", i, status)
		}
	}
	status, out, h := postJSON(t, hs.URL+"/auth/login", `{"username":"demo","password":"demo-password"}`)
	if status != 429 || h.Get("Retry-After") == "" || out["error"] == nil {
		t.Fatalf("after 5 failures: %d %v retry-after=%q", status, out, h.Get("Retry-After"))
	}
	if s.Counters().LoginsThrottled != 1 {
		t.Fatal("throttle not counted")
	}
}
