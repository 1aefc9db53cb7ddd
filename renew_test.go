package authrefresh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/seal"
)

// lockingStore is a MemoryStore with a Locker whose behaviour a test sets.
type lockingStore struct {
	*authrefresh.MemoryStore
	lock     func(ctx context.Context) (func(), error)
	loadFail atomic.Bool
}

func (l *lockingStore) Lock(ctx context.Context) (func(), error) { return l.lock(ctx) }

func (l *lockingStore) Load(ctx context.Context) (*authrefresh.Token, error) {
	if l.loadFail.Load() {
		return nil, errors.New("connection reset")
	}
	return l.MemoryStore.Load(ctx)
}

func countingRefresher(n *atomic.Int64) authrefresh.Refresher {
	return authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
		n.Add(1)
		return &authrefresh.Token{AccessToken: "refreshed", ExpiresIn: time.Hour}, nil
	})
}

// A Locker that answers ErrLockReleased (the holder it waited for is done)
// makes the Session read the store: it adopts the token the holder saved,
// without the lock and without refreshing.
func TestLockReleasedAdoptsWithoutTheLock(t *testing.T) {
	clock := fakeclock.New()
	store := &lockingStore{MemoryStore: authrefresh.NewMemoryStore(nil)}
	var refreshes, locks atomic.Int64
	s := authrefresh.NewSession(store, countingRefresher(&refreshes), authrefresh.Options{Clock: clock.Now})
	store.lock = func(context.Context) (func(), error) { return func() {}, nil }
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "first", RefreshToken: "r", ExpiresIn: time.Minute}); err != nil {
		t.Fatal(err)
	}
	store.lock = func(context.Context) (func(), error) {
		locks.Add(1)
		// Another process held the lock, refreshed and saved, then released it.
		_ = store.MemoryStore.Save(context.Background(), &authrefresh.Token{AccessToken: "theirs", RefreshToken: "r2", Expiry: clock.Now().Add(time.Hour), Generation: 99})
		return nil, authrefresh.ErrLockReleased
	}
	clock.Advance(2 * time.Minute)
	tok, err := s.Token(context.Background())
	if err != nil || tok.AccessToken != "theirs" || refreshes.Load() != 0 || locks.Load() != 1 {
		t.Fatalf("got %v, %v after %d refreshes and %d locks; want their token, adopted", tok, err, refreshes.Load(), locks.Load())
	}
}

// Holding the lock but unable to read the store, a Session does not
// refresh blindly with the token in memory (another process may have
// rotated it): the refresh fails as transient, and works once the store
// answers.
func TestUnreadableStoreUnderTheLockIsTransient(t *testing.T) {
	clock := fakeclock.New()
	store := &lockingStore{MemoryStore: authrefresh.NewMemoryStore(nil)}
	store.lock = func(context.Context) (func(), error) { return func() {}, nil }
	var refreshes atomic.Int64
	s := authrefresh.NewSession(store, countingRefresher(&refreshes), authrefresh.Options{Clock: clock.Now, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, BackoffWait: -1})
	ctx := context.Background()
	if err := s.Login(ctx, &authrefresh.Token{AccessToken: "first", RefreshToken: "r", ExpiresIn: time.Minute}); err != nil {
		t.Fatal(err)
	}
	store.loadFail.Store(true)
	clock.Advance(2 * time.Minute)
	if _, err := s.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshTransient) || refreshes.Load() != 0 {
		t.Fatalf("got %v after %d refreshes; want a transient failure and no refresh", err, refreshes.Load())
	}
	store.loadFail.Store(false)
	clock.Advance(time.Second) // past the backoff
	if tok, err := s.Token(ctx); err != nil || tok.AccessToken != "refreshed" || refreshes.Load() != 1 {
		t.Fatalf("after the store is back: %v %v (%d refreshes)", tok, err, refreshes.Load())
	}
}

// A stored record that cannot be read — altered inside its seal, altered
// so that it is no longer JSON, sealed with a key this keyring lacks — is
// one outcome, with or without a token in memory: a RefreshError of kind
// RefreshStoreUnreadable that matches ErrStoreCorrupt and names the file,
// counted as a store error and never as a transient failure, with no
// request to the auth server and the record left as it was.
func TestUnreadableRecordIsOneOutcome(t *testing.T) {
	e := authtest.Start(t, authserver.Config{AccessTTL: time.Minute})
	entry, _ := seal.NewKey("k1")
	ring, _ := seal.ParseKeyring(entry)
	other, _ := seal.NewKey("k2")
	otherRing, _ := seal.ParseKeyring(other)
	for name, damage := range map[string]func(path string){
		"altered inside the seal": func(path string) {
			r, _ := os.ReadFile(path)
			i := bytes.Index(r, []byte(`"box":"`)) + len(`"box":"`) + 4
			r[i] ^= 'A' ^ 'B'
			os.WriteFile(path, r, 0o600)
		},
		"no longer JSON": func(path string) {
			r, _ := os.ReadFile(path)
			os.WriteFile(path, r[:len(r)/2], 0o600)
		},
		"sealed with a key the keyring lacks": func(path string) {
			if err := (&filestore.Store{Path: path, Keyring: otherRing}).Save(context.Background(), e.Login()); err != nil {
				t.Fatal(err)
			}
		},
	} {
		for _, inMemory := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, token in memory %v", name, inMemory), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "t.json")
				store := &filestore.Store{Path: path, Keyring: ring}
				if err := store.Save(context.Background(), e.Login()); err != nil {
					t.Fatal(err)
				}
				s := e.NewSession(store, authrefresh.Options{Clock: e.Clock.Now})
				if inMemory {
					if _, err := s.Token(context.Background()); err != nil {
						t.Fatal(err)
					}
					e.Clock.Advance(2 * time.Minute) // expired: the next Token must refresh
				}
				damage(path)
				before, _ := os.ReadFile(path)
				calls := e.Auth.Counters().Requests
				_, err := s.Token(context.Background())
				var re *authrefresh.RefreshError
				if !errors.Is(err, authrefresh.ErrStoreCorrupt) || !errors.As(err, &re) || re.Kind != authrefresh.RefreshStoreUnreadable ||
					errors.Is(err, authrefresh.ErrRefreshTransient) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "log in again") {
					t.Fatalf("got %v", err)
				}
				if st := s.Stats(); st.TransientFailures != 0 || st.StoreErrors == 0 {
					t.Fatalf("stats %+v: want a store error, no transient failure", st)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
					t.Fatal("the unreadable record was overwritten")
				}
				if got := e.Auth.Counters().Requests; got["/auth/refresh"] != calls["/auth/refresh"] {
					t.Fatal("a refresh was sent over an unreadable record")
				}
			})
		}
	}
}
