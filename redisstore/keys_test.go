package redisstore

import (
	"fmt"
	"strings"
	"testing"
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
