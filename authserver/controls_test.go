package authserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestInjectedRefreshFailuresAndControlAPI(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{EnableControlAPI: true})
	_, rt := login(t, hs.URL)
	resp, err := http.Post(hs.URL+"/_control/faults", "application/json", strings.NewReader(`{"fail_refreshes":2}`))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("faults: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	for i := 0; i < 2; i++ {
		if status, out := refresh(t, hs.URL, rt); status != 503 || out["error"] != "temporarily_unavailable" {
			t.Fatalf("injected failure %d: %d", i, status)
		}
	}
	if status, _ := refresh(t, hs.URL, rt); status != 200 {
		t.Fatalf("after the injected failures: %d", status)
	}
	resp, _ = http.Get(hs.URL + "/_control/counters")
	var counters Counters
	_ = json.NewDecoder(resp.Body).Decode(&counters)
	resp.Body.Close()
	if counters.InjectedFailures != 2 || counters.Refreshes != 1 {
		t.Fatalf("counters over HTTP: %+v", counters)
	}
}
