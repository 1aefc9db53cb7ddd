package authserver

import "testing"

// The counters say what the server did: a login, a refresh, a refused
// refresh.
func TestCountersCountGrants(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	_, rt := login(t, hs.URL)
	if status, _ := refresh(t, hs.URL, rt); status != 200 {
		t.Fatalf("refresh: %d", status)
	}
	if status, _ := refresh(t, hs.URL, "not-a-refresh-token"); status == 200 {
		t.Fatal("a made-up refresh token was accepted")
	}
	if c := s.Counters(); c.Logins != 1 || c.Refreshes != 1 {
		t.Fatalf("counters %+v: want 1 login, 1 refresh", c)
	}
}
