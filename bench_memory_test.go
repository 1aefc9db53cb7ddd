package authrefresh_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

func heapAndStack() (heap, stack uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// BenchmarkMemory reports the bytes one idle Session costs (logged in, token
// in memory, MemoryStore) and what one caller waiting on a refresh costs
// (heap, plus its goroutine's stack, which is the caller's anyway).
func BenchmarkMemory(b *testing.B) {
	const n = 10000
	tok := benchToken()
	b.Run("idle-session", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			h0, _ := heapAndStack()
			sessions := make([]*authrefresh.Session, n)
			for j := range sessions {
				sessions[j] = authrefresh.NewSession(nil, nil, authrefresh.Options{})
				_ = sessions[j].Login(context.Background(), tok)
			}
			h1, _ := heapAndStack()
			b.ReportMetric(float64(h1-h0)/n, "B/session")
			runtime.KeepAlive(sessions)
		}
	})
	b.Run("waiter", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			release := make(chan struct{})
			started := make(chan struct{})
			var once sync.Once
			ref := authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
				once.Do(func() { close(started) })
				<-release
				return &authrefresh.Token{AccessToken: "new", Expiry: time.Now().Add(time.Hour)}, nil
			})
			s := authrefresh.NewSession(nil, ref, authrefresh.Options{})
			_ = s.Login(context.Background(), &authrefresh.Token{AccessToken: "old", RefreshToken: "r", Expiry: time.Now().Add(-time.Second)})
			h0, s0 := heapAndStack()
			var wg sync.WaitGroup
			for j := 0; j < n; j++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = s.Token(context.Background())
				}()
			}
			<-started
			// Each goroutine's memory exists from its creation, whether it is
			// already parked on the flight or about to be.
			h1, s1 := heapAndStack()
			close(release)
			wg.Wait()
			b.ReportMetric(float64(h1-h0)/n, "heap-B/waiter")
			b.ReportMetric(float64(s1-s0)/n, "stack-B/waiter")
		}
	})
}
