package bff

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

// heldStore is a MemoryStore whose loads count, and wait while held.
type heldStore struct {
	*authrefresh.MemoryStore
	loads   atomic.Int32
	entered chan struct{} // a load began (buffered: told once)
	release chan struct{} // closed: loads go on
	fail    atomic.Bool   // loads fail
}

func (s *heldStore) Load(ctx context.Context) (*authrefresh.Token, error) {
	s.loads.Add(1)
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default: // told once already
		}
		<-s.release
	}
	if s.fail.Load() {
		return nil, errors.New("the store is down")
	}
	return s.MemoryStore.Load(ctx)
}

// A session's parallel calls, when a second has passed, look in the store
// once: while one request loads its records the others go on from memory.
// (Each used to load all four of its records: a page's 16 parallel calls
// made 64 loads, and kept 16 Redis connections open.)
func TestSessionLookedUpOnceAtATime(t *testing.T) {
	records := &heldStore{MemoryStore: authrefresh.NewMemoryStore(nil)}
	others := authrefresh.NewMemoryStore(nil) // the seen and logout records
	table := newSessionTable(func(key string) authrefresh.Store {
		if key == "k" {
			return records
		}
		return others
	})
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	if err := table.put(ctx, "k", "", &session{created: now, seen: now}); err != nil {
		t.Fatal(err)
	}
	records.entered, records.release = make(chan struct{}, 1), make(chan struct{})
	now = now.Add(2 * fresh)
	first := make(chan bool)
	go func() {
		_, err := table.touch(ctx, "k", now, time.Hour, 24*time.Hour)
		first <- err == nil
	}()
	<-records.entered // the first is in the store
	done := make(chan int)
	go func() {
		served := 0
		for range 15 {
			if _, err := table.touch(ctx, "k", now, time.Hour, 24*time.Hour); err == nil {
				served++
			}
		}
		done <- served
	}()
	select {
	case served := <-done:
		if served != 15 {
			t.Errorf("%d of 15 served while the first looked in the store", served)
		}
	case <-records.entered:
		t.Error("a second request looked in the store while the first was")
		close(records.release)
		<-first
		<-done
		return
	case <-time.After(10 * time.Second):
		t.Fatal("the others waited on the first's lookup")
	}
	close(records.release)
	if !<-first {
		t.Error("the first lost the session")
	}
	if n := records.loads.Load(); n != 1 {
		t.Errorf("%d loads of the session's record; want 1", n)
	}
}

// A store that fails keeps a session this process knows for another
// second at a time, rather than ending it; one it does not know is not
// served.
func TestSessionKeptThroughStoreFailure(t *testing.T) {
	store := &heldStore{MemoryStore: authrefresh.NewMemoryStore(nil)}
	table := newSessionTable(func(string) authrefresh.Store { return store })
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	if err := table.put(ctx, "k", "", &session{created: now, seen: now}); err != nil {
		t.Fatal(err)
	}
	store.fail.Store(true)
	for i := range 3 {
		now = now.Add(2 * fresh)
		if _, err := table.touch(ctx, "k", now, time.Hour, 24*time.Hour); err != nil {
			t.Fatalf("lookup %d with the store down: %v", i, err)
		}
	}
	if _, err := table.touch(ctx, "unknown", now, time.Hour, 24*time.Hour); !errors.Is(err, errStoreDown) {
		t.Errorf("a session this process never knew, with the store down: %v; want errStoreDown", err)
	}
	store.fail.Store(false)
	if err := store.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * fresh)
	if _, err := table.touch(ctx, "k", now, time.Hour, 24*time.Hour); !errors.Is(err, errNoSession) {
		t.Errorf("the store back, a session gone from it: %v; want errNoSession", err)
	}
}

// Parallel uses of one session, while the clock moves past fresh and the
// store is looked in, all find it; its last use is the latest of theirs.
// (Run with -race: the read path takes no lock.)
func TestSessionParallelUses(t *testing.T) {
	records := authrefresh.NewMemoryStore(nil)
	table := newSessionTable(func(string) authrefresh.Store { return records })
	ctx := context.Background()
	start := time.Unix(1_800_000_000, 0)
	if err := table.put(ctx, "k", "", &session{created: start, seen: start}); err != nil {
		t.Fatal(err)
	}
	var lost atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				now := start.Add(time.Duration(i*8+g) * 10 * time.Millisecond)
				if _, err := table.touch(ctx, "k", now, time.Hour, 24*time.Hour); err != nil {
					lost.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if lost.Load() != 0 {
		t.Fatalf("%d uses did not find the session", lost.Load())
	}
	last := start.Add(time.Duration(199*8+7) * 10 * time.Millisecond)
	s, err := table.touch(ctx, "k", last, time.Hour, 24*time.Hour)
	if err != nil || !s.seen.Equal(last) {
		t.Fatalf("last use %v (%v); want %v", s.seen, err, last)
	}
}
