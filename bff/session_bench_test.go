package bff

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

// discard keeps nothing: what the table holds in memory is all that is
// measured.
type discard struct{}

func (discard) Load(context.Context) (*authrefresh.Token, error) { return nil, nil }
func (discard) Save(context.Context, *authrefresh.Token) error   { return nil }
func (discard) Clear(context.Context) error                      { return nil }

// BenchmarkSessionMemory: what one live session costs the BFF's process
// beyond its tokens' Session in the keyed manager — the session table's
// entry: who logged in (the ID token's claims) and when — with an ID token
// of a usual size (oidc-provider's, with sid and email: about 750 bytes).
// It reports bytes per session (B/session) for 10,000 sessions.
//
//	go test -run '^$' -bench SessionMemory -benchtime 1x ./bff
func BenchmarkSessionMemory(b *testing.B) {
	const n = 10_000
	now := time.Now()
	for range b.N {
		t := newSessionTable(func(string) authrefresh.Store { return discard{} })
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			idToken := sampleIDToken(i)
			s := newSession(idToken, now, now)
			if err := t.put(context.Background(), storeKey(fmt.Sprint(i)), idToken, &s); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/session")
		runtime.KeepAlive(t)
	}
}

// sampleIDToken is an ID token the size of oidc-provider's, different for
// each i.
func sampleIDToken(i int) string {
	enc := func(v any) string { j, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(j) }
	head := enc(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "keystore-CHANGE-ME"})
	claims := enc(map[string]any{"sub": fmt.Sprintf("user-%d", i), "email": fmt.Sprintf("user-%d@example.com", i), "email_verified": true,
		"sid": fmt.Sprintf("sid-%022d", i), "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "aud": "bff",
		"exp": 1796353549, "iat": 1796349949, "iss": "https://id.example.com"})
	return head + "." + claims + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 256))
}
