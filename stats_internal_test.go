package authrefresh

import (
	"sync"
	"testing"
	"time"
)

// The counters add up from every goroutine: waits and their total, the
// longest wait, lock waits.
func TestCountersAddUp(t *testing.T) {
	var c counters
	var wg sync.WaitGroup
	for i := 1; i <= 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.noteWait(time.Duration(i) * time.Millisecond)
			c.noteLockWait(time.Millisecond)
		}()
	}
	wg.Wait()
	st := c.snapshot()
	if st.Waits != 100 || st.WaitTime != 5050*time.Millisecond || st.MaxWait != 100*time.Millisecond {
		t.Fatalf("waits %d, total %v, longest %v; want 100, 5.05s, 100ms", st.Waits, st.WaitTime, st.MaxWait)
	}
	if st.LockWaits != 100 || st.LockWaitTime != 100*time.Millisecond {
		t.Fatalf("lock waits %d, total %v; want 100, 100ms", st.LockWaits, st.LockWaitTime)
	}
}

// A token whose lifetime nobody knows is counted each time one is taken
// in; one with an expiry is not.
func TestUnknownLifetimeCounted(t *testing.T) {
	s := NewSession(nil, nil, Options{})
	s.noteLifetime(&Token{AccessToken: "opaque"})
	s.noteLifetime(&Token{AccessToken: "opaque-2"})
	s.noteLifetime(&Token{AccessToken: "dated", Expiry: time.Now().Add(time.Hour)})
	if n := s.Stats().UnknownExpiry; n != 2 {
		t.Fatalf("UnknownExpiry = %d, want 2", n)
	}
}
