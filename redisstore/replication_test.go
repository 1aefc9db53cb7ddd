package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/redistest"
	"github.com/authrefresh/authrefresh/redisstore"
)

// startReplicated starts a master and one replica, and returns once the
// replica has caught up (WAIT is the synchronisation).
func startReplicated(t testing.TB) (master, replica *redistest.Server) {
	t.Helper()
	master = startRedis(t)
	replica = redistest.StartWith(t, "--replicaof", "127.0.0.1", master.Port())
	c := master.Client(t)
	for i := 0; ; i++ { // WAIT blocks until the replica acknowledges, 900 ms at most a try
		n, err := c.Do(context.Background(), "wait", 1, 900).Int()
		if err == nil && n == 1 {
			return master, replica
		}
		if i == 20 {
			t.Fatalf("replica did not connect: %d %v", n, err)
		}
	}
}

// With WaitReplicas, a rotated token is on a replica before Save returns, and
// the lock too before Lock does; a replica gone makes a save a counted
// shortfall (not an error: the token is valid) and a lock a transient error
// (a lock no replica knows could be granted twice by a failover).
func TestWaitReplicas(t *testing.T) {
	master, replica := startReplicated(t)
	s := redisstore.New(master.Client(t), "wait")
	// A second: WAIT answers as soon as the replica acknowledges, but on a
	// loaded CI machine (-race, one package at a time) 200 ms was missed.
	s.WaitReplicas, s.WaitTimeout = 1, time.Second
	ctx := context.Background()
	tok := &authrefresh.Token{AccessToken: "replicated-token", Generation: 7}
	if err := s.Save(ctx, tok); err != nil || s.WaitShortfalls() != 0 {
		t.Fatalf("save: %v, shortfalls %d", err, s.WaitShortfalls())
	}
	if got, err := redisstore.New(replica.Client(t), "wait").Load(ctx); err != nil || got.AccessToken != tok.AccessToken || got.Generation != 7 {
		t.Fatalf("on the replica right after Save: %v %v", got, err)
	}
	unlock, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if ok, err := s.CompareAndSwap(ctx, tok, &authrefresh.Token{AccessToken: "next", Generation: 8}); !ok || err != nil || s.WaitShortfalls() != 0 {
		t.Fatalf("swap: %v %v, shortfalls %d", ok, err, s.WaitShortfalls())
	}

	replica.Stop()
	if err := s.Save(ctx, tok); err != nil || s.WaitShortfalls() != 2 { // the save and its retry
		t.Fatalf("save without a replica: %v, shortfalls %d", err, s.WaitShortfalls())
	}
	if _, err := s.Lock(ctx); err == nil || !strings.Contains(err.Error(), "not acknowledged") {
		t.Fatalf("lock without a replica: %v", err)
	}
	if n, err := master.Client(t).Exists(ctx, "authrefresh:{wait}:lock").Result(); err != nil || n != 0 {
		t.Fatalf("an unacknowledged lock was kept: %d %v", n, err)
	}
}

// A release that fails (Redis unreachable) is retried, then counted and
// logged; waiters take the lock once it expires, never stuck longer.
func TestFailedReleaseIsRetriedAndCounted(t *testing.T) {
	r := startRedis(t)
	holder := redisstore.New(r.Client(t), "release")
	holder.LockTTL = time.Second
	ctx := context.Background()
	unlock, err := holder.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	unlock() // every attempt fails: Redis is down
	if holder.ReleaseFailures() != 1 {
		t.Fatalf("release failures %d", holder.ReleaseFailures())
	}
	r.Start() // empty again: the lock is gone with the data
	waiter := redisstore.New(r.Client(t), "release")
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	unlock2, err := waiter.Lock(lctx)
	if err != nil {
		t.Fatalf("waiter after a failed release: %v", err)
	}
	unlock2()
}

// A held lock whose release meets an outage (a master killed, a failover
// under way) is still given back when Redis returns within the retry window,
// instead of staying on the (new) master for LockTTL and stalling every
// process of the fleet: TestSentinelFailovers once saw all 200 requests of
// its processes wait to their deadline that way.
func TestHeldLockReleasedAfterAnOutage(t *testing.T) {
	r := redistest.StartWith(t, "--appendonly", "yes", "--appendfsync", "always", "--dir", t.TempDir())
	holder := redisstore.New(r.Client(t), "outage")
	ctx := context.Background()
	unlock, err := holder.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	released := make(chan struct{})
	go func() { unlock(); close(released) }()
	// The outage, as long as a Sentinel failover can take: longer than the
	// release used to retry (five attempts, 3.3 s here with the client's
	// own dial retries), shorter than it retries now (10 s by default).
	time.Sleep(5 * time.Second)
	r.Start() // the lock comes back with the data (append-only file)
	<-released
	if n := holder.ReleaseFailures(); n != 0 {
		t.Fatalf("release failures %d", n)
	}
	if n, err := r.Client(t).Exists(ctx, "authrefresh:{outage}:lock").Result(); err != nil || n != 0 {
		t.Fatalf("the lock was left behind: %d %v", n, err)
	}
}

// BenchmarkSaveWait is the cost of WaitReplicas on a refresh's writes: the
// lock, the compare-and-swap of the rotated token and the release, with and
// without waiting for one replica (master and replica on loopback).
func BenchmarkSaveWait(b *testing.B) {
	master, _ := startReplicated(b)
	c := master.Client(b)
	for _, wait := range []int{0, 1} {
		b.Run(map[int]string{0: "no-wait", 1: "wait-1-replica"}[wait], func(b *testing.B) {
			s := redisstore.New(c, "bench-wait")
			s.WaitReplicas, s.WaitTimeout = wait, time.Second // a cap the loaded CI machine meets; the typical wait is what is measured
			ctx := context.Background()
			prev := &authrefresh.Token{AccessToken: "a-0"}
			_ = s.Save(ctx, prev)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				unlock, err := s.Lock(ctx)
				if err != nil {
					b.Fatal(err)
				}
				next := &authrefresh.Token{AccessToken: "a-" + strconv.Itoa(i+1), Generation: uint64(i + 1)}
				if ok, err := s.CompareAndSwap(ctx, prev, next); !ok || err != nil {
					b.Fatal(ok, err)
				}
				unlock()
				prev = next
			}
			if s.WaitShortfalls() != 0 {
				b.Fatalf("%d shortfalls", s.WaitShortfalls())
			}
		})
	}
}
