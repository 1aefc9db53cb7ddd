package authserver

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Reuse of a used refresh token revokes the whole family, the live successor included.
func TestReuseDetectionRevokesFamily(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	access, r1 := login(t, hs.URL)
	_, out := refresh(t, hs.URL, r1)
	r2 := out["refresh_token"].(string)
	status, out := refresh(t, hs.URL, r1)
	if status != 401 || out["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", status, out)
	}
	if status, _ := refresh(t, hs.URL, r2); status != 401 {
		t.Fatalf("R2 still works after reuse of R1: %d", status)
	}
	if s.Counters().ReuseDetections != 1 {
		t.Fatalf("reuse detections %d", s.Counters().ReuseDetections)
	}
	// The family's access tokens die with it.
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("access token of a revoked family: %d", resp.StatusCode)
	}
}

func TestGracePeriodReplaysSameSuccessor(t *testing.T) {
	_, hs, c := newTestServer(t, Config{GracePeriod: 5 * time.Second})
	_, r1 := login(t, hs.URL)
	_, first := refresh(t, hs.URL, r1)
	c.Advance(2 * time.Second)
	status, again := refresh(t, hs.URL, r1)
	if status != 200 || again["refresh_token"] != first["refresh_token"] || again["access_token"] != first["access_token"] {
		t.Fatalf("grace replay: %d, same successor: %v", status, again["refresh_token"] == first["refresh_token"])
	}
	c.Advance(4 * time.Second) // outside the window
	if status, _ := refresh(t, hs.URL, r1); status != 401 {
		t.Fatalf("replay after the grace period: %d", status)
	}
	if status, _ := refresh(t, hs.URL, first["refresh_token"].(string)); status != 401 {
		t.Fatal("family not revoked after a late replay")
	}
}

// 100 concurrent uses of one refresh token: exactly one success.
func TestRotationIsAtomic(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	_, r1 := login(t, hs.URL)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var successors []string
	start := make(chan struct{})
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, out := refresh(t, hs.URL, r1)
			mu.Lock()
			defer mu.Unlock()
			statuses[status]++
			if status == 200 {
				successors = append(successors, out["refresh_token"].(string))
			} else if out["error"] != "invalid_grant" {
				t.Errorf("loser got %v", out)
			}
		}()
	}
	close(start)
	wg.Wait()
	if statuses[200] != 1 || statuses[401] != 99 {
		t.Fatalf("statuses %v, want one 200 and 99 401", statuses)
	}
	if s.Counters().Refreshes != 1 {
		t.Fatalf("%d rotations", s.Counters().Refreshes)
	}
}

func TestRotationOffKeepsRefreshToken(t *testing.T) {
	_, hs, _ := newTestServer(t, Config{DisableRotation: true})
	_, r1 := login(t, hs.URL)
	for i := 0; i < 3; i++ {
		status, out := refresh(t, hs.URL, r1)
		if status != 200 || out["refresh_token"] != r1 {
			t.Fatalf("refresh %d: %d", i, status)
		}
	}
}

func TestAbsoluteRefreshLifetime(t *testing.T) {
	_, hs, c := newTestServer(t, Config{RefreshTTL: time.Minute})
	_, rt := login(t, hs.URL)
	for i := 0; i < 5; i++ { // using it does not extend it
		c.Advance(10 * time.Second)
		_, out := refresh(t, hs.URL, rt)
		rt = out["refresh_token"].(string)
	}
	c.Advance(11 * time.Second)
	if status, out := refresh(t, hs.URL, rt); status != 401 || !strings.Contains(out["error_description"].(string), "expired") {
		t.Fatalf("after the absolute lifetime: %d %v", status, out)
	}
}

// A family remembers its last familyHistory refresh tokens: the server's
// memory does not grow with every rotation, a recent used token still trips
// reuse detection, and a forgotten one is refused as unknown.
func TestFamilyHistoryIsBounded(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{})
	_, first := login(t, hs.URL)
	rt := first
	var recent string
	for i := 0; i < familyHistory+10; i++ {
		answer, gerr := s.refreshGrant(context.Background(), rt, "", "", "", false)
		if gerr != nil {
			t.Fatalf("rotation %d: %v", i, gerr.description)
		}
		if i == familyHistory {
			recent = rt
		}
		rt = answer.RefreshToken
	}
	s.refresh.mu.Lock()
	remembered := len(s.refresh.byHash)
	s.refresh.mu.Unlock()
	if remembered != familyHistory {
		t.Fatalf("%d refresh tokens remembered, want %d", remembered, familyHistory)
	}
	if status, out := refresh(t, hs.URL, first); status != 401 || out["error_description"] != "unknown refresh token" || s.Counters().ReuseDetections != 0 {
		t.Fatalf("a forgotten token: %d %v, reuse %d", status, out, s.Counters().ReuseDetections)
	}
	if status, _ := refresh(t, hs.URL, recent); status != 401 || s.Counters().ReuseDetections != 1 {
		t.Fatalf("a recent used token: %d, reuse %d", status, s.Counters().ReuseDetections)
	}
}
