package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/redisstore"
)

// A sealed store keeps no token in the clear, still compares and swaps (on
// the access token's hash, inside the script), and refuses a record copied
// from another session.
func TestSealedStore(t *testing.T) {
	r := startRedis(t)
	rc := r.Client(t)
	ctx := context.Background()
	k := authtest.Keyring(t, "k1")
	s := redisstore.New(rc, "user:alice")
	s.Keyring = k
	older := &authrefresh.Token{AccessToken: "older-secret", RefreshToken: "r1-secret"}
	newer := &authrefresh.Token{AccessToken: "newer-secret", RefreshToken: "r2-secret"}
	if ok, err := s.CompareAndSwap(ctx, nil, older); !ok || err != nil {
		t.Fatalf("first save: %v %v", ok, err)
	}
	if ok, err := s.CompareAndSwap(ctx, older, newer); !ok || err != nil {
		t.Fatalf("swap from the current (sealed) token refused: %v", err)
	}
	if ok, err := s.CompareAndSwap(ctx, older, &authrefresh.Token{AccessToken: "stale"}); ok || err != nil {
		t.Fatalf("stale save accepted: %v %v", ok, err)
	}
	raw, err := rc.Get(ctx, "authrefresh:{user:alice}:token").Result()
	if err != nil || strings.Contains(raw, "secret") || !strings.Contains(raw, `"sealed":1`) {
		t.Fatalf("stored in Redis: %s (%v)", raw, err)
	}
	if tok, err := s.Load(ctx); err != nil || tok.RefreshToken != "r2-secret" {
		t.Fatalf("%v %v", tok, err)
	}

	// Copied into bob's session, it does not open.
	bob := redisstore.New(rc, "user:bob")
	bob.Keyring = k
	rc.Set(ctx, "authrefresh:{user:bob}:token", raw, 0)
	if _, err := bob.Load(ctx); err == nil || !strings.Contains(err.Error(), "sealed for another store") {
		t.Fatalf("got %v", err)
	}

	// Turning sealing on over plain records: AllowPlain reads them, and the
	// next swap seals; a reader with the rotated keyring still opens it.
	plain := redisstore.New(rc, "migrating")
	if err := plain.Save(ctx, older); err != nil {
		t.Fatal(err)
	}
	sealed := redisstore.New(rc, "migrating")
	sealed.Keyring = k
	if _, err := sealed.Load(ctx); err == nil {
		t.Fatal("a plain record opened in a sealed store without AllowPlain")
	}
	migrating := *k
	migrating.AllowPlain = true
	sealed.Keyring = &migrating
	if tok, err := sealed.Load(ctx); err != nil || tok.AccessToken != older.AccessToken {
		t.Fatalf("%v %v", tok, err)
	}
	if ok, err := sealed.CompareAndSwap(ctx, older, newer); !ok || err != nil {
		t.Fatalf("swap over a plain record: %v %v", ok, err)
	}
	if raw, _ := rc.Get(ctx, "authrefresh:{migrating}:token").Result(); strings.Contains(raw, "secret") {
		t.Fatalf("still plain after the swap: %s", raw)
	}
}

// BenchmarkSealed: a Redis save (compare-and-swap) and load, plain and
// sealed, in one run: what sealing adds next to a loopback round trip.
func BenchmarkSealed(b *testing.B) {
	r := startRedis(b)
	c := r.Client(b)
	ctx := context.Background()
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "sealed"}[sealed]
		s := redisstore.New(c, "bench-seal-"+name)
		if sealed {
			s.Keyring = authtest.Keyring(b, "k1")
		}
		prev := &authrefresh.Token{AccessToken: strings.Repeat("a", 800), RefreshToken: strings.Repeat("r", 64)}
		_ = s.Save(ctx, prev)
		b.Run("swap/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				next := *prev
				next.AccessToken = prev.AccessToken[:790] + fmt.Sprintf("%010d", i)
				if ok, err := s.CompareAndSwap(ctx, prev, &next); !ok || err != nil {
					b.Fatal(ok, err)
				}
				prev = &next
			}
		})
		b.Run("load/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := s.Load(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
