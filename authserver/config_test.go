package authserver

import "testing"

// The zero Config serves: the demo user logs in with the demo client's
// defaults, and the issuer is named.
func TestZeroConfigServes(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	if access, rt := login(t, hs.URL); access == "" || rt == "" {
		t.Fatal("the demo user cannot log in")
	}
	if s.cfg.Issuer != "authrefresh" || s.cfg.Clients[DemoClientID] != DemoClientSecret {
		t.Fatalf("defaults: issuer %q, clients %v", s.cfg.Issuer, s.cfg.Clients)
	}
}
