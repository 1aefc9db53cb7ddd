package authrefresh_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/naive"
	"golang.org/x/oauth2"
)

// noopBase answers every request at once with one shared 200, so a benchmark
// measures only the RoundTripper in front of it.
type noopBase struct{ resp *http.Response }

func (n noopBase) RoundTrip(*http.Request) (*http.Response, error) { return n.resp, nil }

func newNoop() noopBase {
	return noopBase{resp: &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}}
}

func benchToken() *authrefresh.Token {
	return &authrefresh.Token{AccessToken: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU", RefreshToken: "r", IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)}
}

// BenchmarkRoundTrip is the per-request overhead of each way of attaching a
// token, in front of a base that does nothing, for a request with one header
// (a typical client call) and with eight (a request passing through a
// proxy). Run with -benchmem.
func BenchmarkRoundTrip(b *testing.B) {
	tok := benchToken()
	base := newNoop()
	run := func(b *testing.B, rt http.RoundTripper, r *http.Request) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := rt.RoundTrip(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, headers := range []int{1, 8} {
		req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/api/v1/data", nil)
		req.Header.Set("Accept", "application/json")
		for _, h := range []string{"User-Agent", "Accept-Encoding", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id", "Traceparent", "Content-Type"}[:headers-1] {
			req.Header.Set(h, "value-of-"+h)
		}
		prefix := fmt.Sprintf("headers-%d/", headers)
		b.Run(prefix+"floor-fixed-header", func(b *testing.B) {
			fixed := req.Clone(context.Background())
			fixed.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			run(b, base, fixed)
		})
		b.Run(prefix+"x-oauth2", func(b *testing.B) {
			src := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, Expiry: tok.Expiry}))
			run(b, &oauth2.Transport{Source: src, Base: base}, req)
		})
		b.Run(prefix+"hand-written-interceptor", func(b *testing.B) {
			n := &naive.Interceptor{Base: base}
			n.SetTokens(tok.AccessToken, tok.RefreshToken)
			run(b, n, req)
		})
		b.Run(prefix+"authrefresh", func(b *testing.B) {
			s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
			_ = s.Login(context.Background(), tok)
			run(b, &authrefresh.Transport{Session: s, Base: base, Origins: []string{"https://api.example.com"}}, req)
		})
	}
}

// BenchmarkTokenParallel is the fast path under contention: every goroutine
// asks for the token at once.
func BenchmarkTokenParallel(b *testing.B) {
	tok := benchToken()
	b.Run("x-oauth2-ReuseTokenSource", func(b *testing.B) {
		src := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, Expiry: tok.Expiry}))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := src.Token(); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("authrefresh-Session", func(b *testing.B) {
		s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
		_ = s.Login(context.Background(), tok)
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Token(ctx); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
