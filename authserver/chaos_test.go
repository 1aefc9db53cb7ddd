package authserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Each chaos fault, forced with rate 1, does exactly what its documentation
// says, as a plain HTTP client sees it and as the counters record it.
func TestChaosFaults(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{EnableControlAPI: true})
	access, rt := login(t, hs.URL)
	post := func(path, auth, body string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", hs.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		return http.DefaultClient.Do(req)
	}

	s.SetChaos(Chaos{Seed: 1, RefreshFailRate: 1})
	if status, out := refresh(t, hs.URL, rt); status != 503 || out["error"] != "temporarily_unavailable" {
		t.Fatalf("fail: %d %v", status, out)
	}
	s.SetChaos(Chaos{Seed: 1, RefreshDropRate: 1})
	if resp, err := post("/auth/refresh", "", `{"refresh_token":"`+rt+`"}`); err == nil {
		resp.Body.Close()
		t.Fatalf("drop: got %s, want a closed connection", resp.Status)
	}
	if c := s.Counters(); c.Refreshes != 0 {
		t.Fatalf("a dropped refresh was processed: %+v", c)
	}
	s.SetChaos(Chaos{Seed: 1, RefreshLostRate: 1})
	if resp, err := post("/auth/refresh", "", `{"refresh_token":"`+rt+`"}`); err == nil {
		resp.Body.Close()
		t.Fatalf("lost: got %s, want a closed connection", resp.Status)
	}
	if c := s.Counters(); c.Refreshes != 1 {
		t.Fatalf("a lost refresh was not processed: %+v", c)
	}
	s.SetChaos(Chaos{Seed: 1, APICutRate: 1})
	resp, err := post("/api/v1/data", access, `{"name":"cut","price":3}`)
	if err != nil {
		t.Fatal(err) // the headers arrive whole
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut: read %v, want unexpected EOF", err)
	}
	if p := s.TakeProducts(); len(p) != 1 || p[0].Name != "cut" || p[0].ID != 1 {
		t.Fatalf("cut POST did not create its product: %+v", p)
	}
	if p := s.Products(); len(p) != 0 {
		t.Fatalf("TakeProducts left %+v", p)
	}
	s.SetChaos(Chaos{Seed: 1, RevokeRate: 1})
	resp, err = post("/api/v1/data", access, `{"name":"revoked","price":3}`)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("revoke: %v %v", err, resp.Status)
	}
	resp.Body.Close()

	// Off again, and the settings and counts are reachable over HTTP.
	resp, err = http.Post(hs.URL+"/_control/faults", "application/json", strings.NewReader(`{"chaos":{}}`))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("control: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	resp, _ = http.Get(hs.URL + "/_control/counters")
	var counters Counters
	_ = json.NewDecoder(resp.Body).Decode(&counters)
	resp.Body.Close()
	want := FaultCounts{Refresh503: 1, RefreshDropped: 1, RefreshLost: 1, APICut: 1, AccessRevoked: 1}
	if counters.Faults != want || counters.Panics != 0 {
		t.Fatalf("faults %+v, want %+v (panics %d)", counters.Faults, want, counters.Panics)
	}
	_, fresh := login(t, hs.URL)
	if status, _ := refresh(t, hs.URL, fresh); status != 200 {
		t.Fatalf("chaos off: refresh %d", status)
	}
	access2, _ := login(t, hs.URL)
	resp, err = post("/api/v1/data", access2, `{"name":"after-take","price":1}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p := s.Products(); len(p) != 1 || p[0].ID != 2 {
		t.Fatalf("IDs must keep counting after TakeProducts: %+v", p)
	}
}
