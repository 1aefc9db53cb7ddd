package keyed_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/keyed"
)

// BenchmarkManager: 100,000 keys in one process. memory is the heap per
// live key (a Session, its MemoryStore and token, the map entry); the token
// cases are the fast path under RunParallel, across all keys, for one key,
// and through the map-of-keyed.Manager-under-one-mutex a team would write by hand.
//
//	go test -run '^$' -bench keyed.Manager -benchmem .
func BenchmarkManager(b *testing.B) {
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%06d", i)
	}
	spec := func(string) (keyed.Spec, error) {
		return keyed.Spec{Store: authrefresh.NewMemoryStore(nil), Options: authrefresh.Options{RefreshJitter: 0.1}}, nil
	}
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	tok := func(i int) *authrefresh.Token {
		return &authrefresh.Token{AccessToken: fmt.Sprintf("access-token-of-user-%06d-0123456789", i), RefreshToken: "r", ExpiresIn: time.Hour}
	}
	before := heap()
	sessions := &keyed.Manager{New: spec}
	for i, k := range keys {
		if err := sessions.Login(ctx, k, tok(i)); err != nil {
			b.Fatal(err)
		}
	}
	perKey := float64(heap()-before) / n
	b.Run("memory", func(b *testing.B) {
		b.ReportMetric(perKey, "B/key")
		for i := 0; i < b.N; i++ {
		}
	})
	b.Run("token/across-100k-keys", func(b *testing.B) {
		var next atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				i += 104729
				if _, err := sessions.Token(ctx, keys[i%n]); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("token/one-key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := sessions.Token(ctx, keys[0]); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("token/naive-map-under-one-mutex", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string]*authrefresh.Session{}
		for i, k := range keys {
			s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
			_ = s.Login(ctx, tok(i))
			m[k] = s
		}
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				i += 104729
				mu.Lock()
				s := m[keys[i%n]]
				mu.Unlock()
				if _, err := s.Token(ctx); err != nil {
					b.Error(err)
				}
			}
		})
	})
}

// BenchmarkManagerLifetimes: 100,000 keys whose tokens were all issued in
// the same second, each used every 1 % of the lifetime (one hour) for three
// lifetimes, on a fake clock. Reported: refreshes with a token already
// replaced (target 0: each token is refreshed once, never twice), refreshes
// per key per lifetime (1/0.7 with refresh-ahead at 70 %), and the busiest
// 36-s step's refreshes, as a share and per second — with RefreshJitter 0
// (the herd) and 0.1.
//
//	go test -run '^$' -bench SessionsLifetimes -benchtime 1x .
func BenchmarkManagerLifetimes(b *testing.B) {
	const n, lifetime, steps = 100_000, time.Hour, 300
	step := lifetime / 100
	for _, jitter := range []float64{0, 0.1} {
		b.Run(fmt.Sprintf("jitter-%g", jitter), func(b *testing.B) {
			for range b.N {
				clock := fakeclock.New()
				var now atomic.Int64 // the current step
				perStep := make([]atomic.Int64, steps+1)
				latest := make([]atomic.Pointer[string], n)
				var refreshes, stale atomic.Int64
				sessions := &keyed.Manager{MaxIdle: -1, New: func(key string) (keyed.Spec, error) {
					var i int
					fmt.Sscan(key, &i)
					ref := authrefresh.RefreshFunc(func(_ context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
						refreshes.Add(1)
						perStep[now.Load()].Add(1)
						next := fmt.Sprintf("%d-%d", i, refreshes.Load())
						if old := latest[i].Swap(&next); old == nil || *old != tok.AccessToken {
							stale.Add(1) // refreshed with a token already replaced
						}
						return &authrefresh.Token{AccessToken: next, ExpiresIn: lifetime}, nil
					})
					return keyed.Spec{Refresher: ref, Options: authrefresh.Options{Clock: clock.Now, RefreshJitter: jitter}}, nil
				}}
				ctx := context.Background()
				keys := make([]string, n)
				for i := range keys {
					keys[i] = fmt.Sprint(i)
					first := fmt.Sprintf("%d-login", i)
					latest[i].Store(&first)
					if err := sessions.Login(ctx, keys[i], &authrefresh.Token{AccessToken: first, RefreshToken: "r", ExpiresIn: lifetime}); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for s := 1; s <= steps; s++ {
					clock.Advance(step)
					now.Store(int64(s))
					for _, k := range keys {
						if _, err := sessions.Token(ctx, k); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				// Let the last refreshes ahead land (bounded: each is a function call).
				settled := func() bool { st, _ := sessions.Stats(); return int64(st.Refreshes) == refreshes.Load() }
				for i := 0; i < 1000 && !settled(); i++ {
					runtime.Gosched()
				}
				var busiest int64
				for i := range perStep {
					busiest = max(busiest, perStep[i].Load())
				}
				b.ReportMetric(float64(stale.Load()), "stale-refreshes")
				b.ReportMetric(float64(refreshes.Load())/n/3, "refreshes/key/lifetime")
				b.ReportMetric(100*float64(busiest)/n, "%-in-busiest-step")
				b.ReportMetric(float64(busiest)/step.Seconds(), "peak-refreshes/s")
			}
		})
	}
}
