package bff

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

// savesCounted is a MemoryStore that counts its saves.
type savesCounted struct {
	*authrefresh.MemoryStore
	saves atomic.Int32
}

func (s *savesCounted) Save(ctx context.Context, tok *authrefresh.Token) error {
	s.saves.Add(1)
	return s.MemoryStore.Save(ctx, tok)
}

// The login cookies' key is saved when made, and again every hour after
// (so that a store that expires records keeps it), the same key: a login
// cookie sealed before still opens.
func TestLoginKeySavedAgain(t *testing.T) {
	store := &savesCounted{MemoryStore: authrefresh.NewMemoryStore(nil)}
	now := time.Unix(1_800_000_000, 0)
	l := &loginSealer{store: store, clock: func() time.Time { return now }}
	ctx := context.Background()
	cookie, err := l.seal(ctx, &pendingLogin{State: "s1", Verifier: "v"})
	if err != nil || store.saves.Load() != 1 {
		t.Fatalf("the first seal: %v, %d saves", err, store.saves.Load())
	}
	now = now.Add(30 * time.Minute)
	if _, err := l.seal(ctx, &pendingLogin{State: "s2", Verifier: "v"}); err != nil || store.saves.Load() != 1 {
		t.Fatalf("half an hour on: %v, %d saves; want 1", err, store.saves.Load())
	}
	now = now.Add(31 * time.Minute)
	if _, err := l.seal(ctx, &pendingLogin{State: "s3", Verifier: "v"}); err != nil || store.saves.Load() != 2 {
		t.Fatalf("an hour on: %v, %d saves; want 2", err, store.saves.Load())
	}
	if p, err := l.open(ctx, cookie); err != nil || p.State != "s1" {
		t.Fatalf("a cookie sealed before the key was saved again: %v %v", p, err)
	}
	// Another process on the store opens it too.
	other := &loginSealer{store: store, clock: func() time.Time { return now }}
	if p, err := other.open(ctx, cookie); err != nil || p.State != "s1" {
		t.Fatalf("another replica: %v %v", p, err)
	}
}
