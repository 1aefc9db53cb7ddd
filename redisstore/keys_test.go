package redisstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/redistest"
	"github.com/authrefresh/authrefresh/keyed"
	"github.com/authrefresh/authrefresh/seal"
	"github.com/redis/go-redis/v9"
)

// redisTag is the part of key Redis Cluster hashes: the content of the
// first {...} when it is not empty, else the whole key.
func redisTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// slot is Redis Cluster's CRC16 (XMODEM) of the key's tag, mod 16384.
func slot(key string) int {
	var crc uint16
	for _, b := range []byte(redisTag(key)) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// checkKeys asserts that every key of name has the name's tag, a real tag.
func checkKeys(t *testing.T, name string) keys {
	t.Helper()
	k := keysOf(name)
	tag := HashTag(name)
	for _, key := range []string{k.token, k.lock, k.channel, k.info} {
		if got := redisTag(key); got != tag || got == key {
			t.Fatalf("name %q: key %q hashes on %q, want the tag %q", name, key, got, tag)
		}
	}
	return k
}

func TestKeysOneSlotPerSessionSpreadOverSlots(t *testing.T) {
	if got := keysOf("alice").token; got != "authrefresh:{alice}:token" {
		t.Fatalf("a plain name's layout changed: %q", got)
	}
	odd := []string{"", "}", "{", "a}b", "{x}", "#", "#abc", "user:1", "ünïcødé", "a/b\\c", strings.Repeat("k", 129), "\x00", "tab\there"}
	for _, name := range odd {
		checkKeys(t, name)
	}
	// "a}b" must not share a key with "a" (its tag would have been "a").
	if keysOf("a}b").token == keysOf("a").token || slot(keysOf("a}b").token) != slot(keysOf("a}b").lock) {
		t.Fatal("a name holding } collides or spans slots")
	}
	slots := map[int]bool{}
	for i := range 10000 {
		name := fmt.Sprintf("user-%d", i)
		if i%2 == 1 {
			name = fmt.Sprintf("tenant{%d}/user}", i) // hashed names spread too
		}
		slots[slot(checkKeys(t, name).token)] = true
	}
	// 10,000 names thrown into 16,384 slots fill about 7,400 of them.
	if len(slots) < 6500 {
		t.Fatalf("10,000 sessions use only %d slots", len(slots))
	}
}

// FuzzKeys: two different names never share a key, and each name's keys
// share one real hash tag.
func FuzzKeys(f *testing.F) {
	for _, s := range []string{"alice", "", "}", "a}b", "#", "#" + strings.Repeat("0", 64), strings.Repeat("é", 100)} {
		f.Add(s, s+"}")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := checkKeys(t, a), checkKeys(t, b)
		if a != b && (ka.token == kb.token || ka.lock == kb.lock || ka.info == kb.info || ka.channel == kb.channel) {
			t.Fatalf("names %q and %q share a key", a, b)
		}
	})
}

// usedMemory is Redis's used_memory.
func usedMemory(tb testing.TB, rc *redis.Client) int64 {
	info, err := rc.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	tb.Fatal("no used_memory")
	return 0
}

// BenchmarkStoredKeys: Redis memory per stored session (the token record
// under its key: a 700-byte JWT access token, a refresh token, dates and
// generation), plain and sealed, written with the records Store writes; and
// the Redis commands a keyed.Manager over those keys runs per Token call once
// every key is loaded (target 0). 100,000 keys; AUTHREFRESH_STORED_KEYS=1000000
// for a million.
//
//	go test -run '^$' -bench StoredKeys -benchtime 1x ./redisstore/
func BenchmarkStoredKeys(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("AUTHREFRESH_STORED_KEYS")); err == nil {
		n = v
	}
	line, _ := seal.NewKey("k1")
	sealing, _ := seal.ParseKeyring(line)
	for _, c := range []struct {
		name string
		keys *seal.Keyring
	}{{"plain", nil}, {"sealed", sealing}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				r := redistest.Start(b)
				rc := r.Client(b)
				ctx := context.Background()
				before := usedMemory(b, rc)
				expiry := time.Now().Add(time.Hour).Truncate(time.Second)
				for start := 0; start < n; start += 1000 {
					p := rc.Pipeline()
					for i := start; i < min(start+1000, n); i++ {
						name := fmt.Sprintf("user-%07d", i)
						tok := &authrefresh.Token{AccessToken: "eyJhbGciOiJFZERTQSJ9." + strings.Repeat("x", 600) + fmt.Sprintf(".%07d", i),
							RefreshToken: fmt.Sprintf("rt-%07d-%s", i, strings.Repeat("r", 40)), Expiry: expiry, IssuedAt: expiry.Add(-time.Hour), Generation: 3}
						rec, err := c.keys.SealToken(tok, name)
						if err != nil {
							b.Fatal(err)
						}
						p.Set(ctx, keysOf(name).token, rec, 0)
					}
					if _, err := p.Exec(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(usedMemory(b, rc)-before)/float64(n), "redis-bytes/key")

				// Steady state: 10,000 of those users live in a process.
				live := min(n, 10_000)
				users := &keyed.Manager{MaxIdle: -1, New: func(key string) (keyed.Spec, error) {
					s := New(rc, key)
					s.Keyring = c.keys
					return keyed.Spec{Store: s}, nil
				}}
				names := make([]string, live)
				for i := range names {
					names[i] = fmt.Sprintf("user-%07d", i)
					if _, err := users.Token(ctx, names[i]); err != nil {
						b.Fatal(err)
					}
				}
				c0 := commandsProcessed(b, rc)
				const calls = 1_000_000
				for i := 0; i < calls; i++ {
					if _, err := users.Token(ctx, names[i*7919%live]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(commandsProcessed(b, rc)-c0-1)/calls, "redis-cmds/call")
			}
		})
	}
}

func commandsProcessed(tb testing.TB, rc *redis.Client) int64 {
	info, err := rc.Info(context.Background(), "stats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
