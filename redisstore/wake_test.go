package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/redisstore"
)

func TestLockExcludesWakesAndExpires(t *testing.T) {
	r := startRedis(t)
	a := redisstore.New(r.Client(t), "lock")
	b := redisstore.New(r.Client(t), "lock")
	b.PollInterval = time.Hour // only the pub/sub release can wake b
	ctx := context.Background()
	unlockA, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	woken := make(chan error)
	go func() {
		_, err := b.Lock(ctx)
		woken <- err
	}()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := redisstore.New(r.Client(t), "lock").Lock(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third Lock while held: %v", err)
	}
	unlockA()
	// Woken by the release message (not a poll): told so, to read the
	// token the holder saved; the lock is then free to take.
	if err := <-woken; !errors.Is(err, authrefresh.ErrLockReleased) {
		t.Fatalf("a waiter woken by the release got %v, want ErrLockReleased", err)
	}
	unlockB, err := b.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlockB()

	// A holder that dies never releases: its lock expires and another takes over.
	dead := redisstore.New(r.Client(t), "dies")
	dead.LockTTL = 200 * time.Millisecond
	if _, err := dead.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	heir := redisstore.New(r.Client(t), "dies")
	heir.PollInterval = 20 * time.Millisecond
	deadline, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	unlock, err := heir.Lock(deadline)
	if err != nil {
		t.Fatalf("no takeover after the TTL: %v", err)
	}
	unlock()
}
