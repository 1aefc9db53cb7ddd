package authrefresh_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

// BenchmarkSessions: 100,000 keys in one process. memory is the heap per
// live key (a Session, its MemoryStore and token, the map entry); the token
// cases are the fast path under RunParallel, across all keys, for one key,
// and through the map-of-Sessions-under-one-mutex a team would write by hand.
//
//	go test -run '^$' -bench Sessions -benchmem .
func BenchmarkSessions(b *testing.B) {
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%06d", i)
	}
	spec := func(string) (authrefresh.SessionSpec, error) {
		return authrefresh.SessionSpec{Store: authrefresh.NewMemoryStore(nil), Options: authrefresh.Options{RefreshJitter: 0.1}}, nil
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
	sessions := &authrefresh.Sessions{New: spec}
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
