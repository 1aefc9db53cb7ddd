package bff

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authrefresh/authrefresh"
)

// session is what the BFF knows of one browser's login beside its tokens
// (which live in the keyed.Manager's stores).
type session struct {
	claims   json.RawMessage // the ID token's, for /bff/user (the ID token itself stays in the store)
	sub, sid string          // whom a back-channel logout names
	created  time.Time       // the login: MaxAge counts from it
	seen     time.Time       // the last use: IdleTimeout counts from it
}

// newSession is the session of a login whose ID token is idToken, begun
// at created and last used at seen.
func newSession(idToken string, created, seen time.Time) session {
	claims := idTokenClaims(idToken)
	s := session{created: created, seen: seen}
	s.sub, _ = claims["sub"].(string)
	s.sid, _ = claims["sid"].(string)
	s.claims, _ = json.Marshal(claims)
	return s
}

// fresh is how long a replica trusts what it knows of a session before it
// looks in the store again: a logout on another replica ends the session
// here within this.
const fresh = time.Second

// sessionTable holds the sessions: in the store (one record per session,
// shared by replicas, kept across restarts), and here, with when each was
// last looked up and last used. Its read path takes no lock: a page's
// parallel calls all touch one session.
type sessionTable struct {
	store func(key string) authrefresh.Store
	m     sync.Map // key → *entry
}

// entry is what this process knows of a session. A lookup in the store
// makes a new entry; one entry's times move forward only.
type entry struct {
	s        session      // as the store said; its seen is the entry's, below
	checked  time.Time    // when the store last said the session is there
	seen     atomic.Int64 // the last use, in Unix nanoseconds
	shared   atomic.Int64 // the last use the store holds, as far as this process knows
	checking atomic.Int64 // when a request began to look in the store; 0 when none has
}

func newEntry(s session, checked, shared time.Time) *entry {
	e := &entry{s: s, checked: checked}
	e.s.seen = time.Time{}
	e.seen.Store(s.seen.UnixNano())
	e.shared.Store(shared.UnixNano())
	return e
}

// session is e's session, last used at its last use.
func (e *entry) session() session {
	s := e.s
	s.seen = time.Unix(0, e.seen.Load())
	return s
}

// usable reports whether e's session, by what this process knows, is
// neither idle nor too old at now.
func (e *entry) usable(now time.Time, idle, maxAge time.Duration) bool {
	return now.Sub(time.Unix(0, e.seen.Load())) <= idle && now.Sub(e.s.created) <= maxAge
}

// use moves e's last use to now.
func (e *entry) use(now time.Time) {
	for n := now.UnixNano(); ; {
		old := e.seen.Load()
		if old >= n || e.seen.CompareAndSwap(old, n) {
			return
		}
	}
}

// claimShare reports whether the last use, now, is this request's to
// write to the store: once a shareSeen.
func (e *entry) claimShare(now time.Time) bool {
	old := e.shared.Load()
	return now.Sub(time.Unix(0, old)) >= shareSeen && e.shared.CompareAndSwap(old, now.UnixNano())
}

// claimCheck reports whether looking in the store is this request's: none
// is looking, or the one that is began more than checkWait ago.
func (e *entry) claimCheck(now time.Time) bool {
	old := e.checking.Load()
	if old != 0 && now.Sub(time.Unix(0, old)) < checkWait {
		return false
	}
	return e.checking.CompareAndSwap(old, now.UnixNano())
}

func newSessionTable(store func(key string) authrefresh.Store) *sessionTable {
	return &sessionTable{store: store}
}

// sessionRecord is the kind of record a session is kept as: a Token, so
// that every Store (files, Redis, sealed or not) keeps it as it keeps
// tokens; its AccessToken says what it is, its IDToken who logged in,
// IssuedAt when.
const sessionRecord = "authrefresh-bff-session"

// put keeps key's session, of a login whose ID token is idToken.
func (t *sessionTable) put(ctx context.Context, key, idToken string, s *session) error {
	rec := &authrefresh.Token{AccessToken: sessionRecord, IDToken: idToken, IssuedAt: s.created}
	if err := t.store(key).Save(ctx, rec); err != nil {
		return err
	}
	t.m.Store(key, newEntry(*s, s.seen, s.created))
	return nil
}

// touch returns key's session, used now: from memory when this process
// looked at the store less than a second ago, else from the store; else
// errNoSession, errSessionEnded for one that was there and is over (idle,
// too old, logged out through the back-channel), or errStoreDown. The last use is shared through the store, at most a
// minute late, so that the idle timeout counts from the last use on any
// replica.
//
// One request at a time looks in the store for a session this process
// knows: the others, meanwhile, go on from memory (the session's many
// parallel calls at each second would otherwise each load its records).
// A store that fails leaves a known session as this process knew it.
func (t *sessionTable) touch(ctx context.Context, key string, now time.Time, idle, maxAge time.Duration) (s session, err error) {
	v, _ := t.m.Load(key)
	here, _ := v.(*entry)
	if here != nil && here.usable(now, idle, maxAge) && (now.Sub(here.checked) < fresh || !here.claimCheck(now)) {
		// The common case: known, and fresh or being looked up.
		here.use(now)
		if here.claimShare(now) {
			t.share(ctx, key, now)
		}
		return here.session(), nil
	}
	var checked, shared time.Time
	known := here != nil
	if known {
		s, checked, shared = here.session(), here.checked, time.Unix(0, here.shared.Load())
	}
	if !known || now.Sub(checked) >= fresh {
		rec, err := t.store(key).Load(ctx)
		switch {
		case err != nil && known:
			checked = now // the store fails: as known, for another second
		case err != nil:
			return session{}, fmt.Errorf("%w: %w", errStoreDown, err)
		case rec == nil || rec.AccessToken != sessionRecord:
			if known {
				t.m.CompareAndDelete(key, here)
			}
			return session{}, errNoSession
		default:
			shared = rec.IssuedAt // the login, until a use is shared
			if u, err := t.store(seenKey(key)).Load(ctx); err == nil && u != nil && u.AccessToken == seenRecord && u.IssuedAt.After(shared) {
				shared = u.IssuedAt
			}
			seen := shared
			if known && s.seen.After(seen) {
				seen = s.seen
			}
			s, checked = newSession(rec.IDToken, rec.IssuedAt, seen), now
			if t.logoutsEnded(ctx, s.sub, s.sid, s.created) {
				return session{}, errSessionEnded
			}
		}
	}
	if now.Sub(s.seen) > idle || now.Sub(s.created) > maxAge {
		return session{}, errSessionEnded
	}
	s.seen = now
	share := now.Sub(shared) >= shareSeen
	if share {
		shared = now
	}
	// Unless a logout removed it meanwhile.
	if e := newEntry(s, checked, shared); known {
		t.m.CompareAndSwap(key, here, e)
	} else {
		t.m.LoadOrStore(key, e)
	}
	if share {
		t.share(ctx, key, now)
	}
	return s, nil
}

// The ways touch finds no session.
var (
	errNoSession    = errors.New("no session")
	errSessionEnded = errors.New("the session ended")
	errStoreDown    = errors.New("the sessions' store cannot be read")
)

// checkWait is how long the other requests of a session go on from memory
// while one looks in the store; a lookup slower than this gets company.
const checkWait = 5 * time.Second

// shareSeen is how often a session's last use is written to the store.
const shareSeen = time.Minute

// seenRecord is the kind of record a session's last use is kept as, under
// seenKey: its IssuedAt.
const seenRecord = "authrefresh-bff-session-seen"

// seenKey names the record of key's last use.
func seenKey(key string) string { return "seen:" + key }

// share writes key's last use, now, to the store; a failure is let be
// (the next use writes it again).
func (t *sessionTable) share(ctx context.Context, key string, now time.Time) {
	_ = t.store(seenKey(key)).Save(ctx, &authrefresh.Token{AccessToken: seenRecord, IssuedAt: now})
}

// idToken is the ID token of key's session, from the store; "" when none.
func (t *sessionTable) idToken(ctx context.Context, key string) string {
	rec, err := t.store(key).Load(ctx)
	if err != nil || rec == nil || rec.AccessToken != sessionRecord {
		return ""
	}
	return rec.IDToken
}

// forgetAll drops what this process knows of every session: the next use
// of each looks in the store.
func (t *sessionTable) forgetAll() {
	t.m.Clear()
}

// remove forgets key's session, here and in the store, and reports
// whether it was there.
func (t *sessionTable) remove(ctx context.Context, key string) bool {
	_, here := t.m.LoadAndDelete(key)
	store := t.store(key)
	rec, _ := store.Load(ctx)
	_ = store.Clear(ctx)
	_ = t.store(seenKey(key)).Clear(ctx)
	return here || rec != nil
}

// idTokenClaims are the ID token's claims, for display: it came straight
// from the token endpoint, and Complete checked its nonce, audience and
// issuer.
func idTokenClaims(idToken string) map[string]any {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return map[string]any{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	var claims map[string]any
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		return map[string]any{}
	}
	for _, k := range []string{"nonce", "at_hash", "c_hash"} {
		delete(claims, k)
	}
	return claims
}
