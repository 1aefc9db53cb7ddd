package authrefresh

import (
	"context"
	"errors"
	"sync"
)

// Store keeps a Session's token where it outlives the process, or where other
// processes can see it. Implementations must be safe for concurrent use.
type Store interface {
	// Load returns the stored token, or (nil, nil) when there is none.
	Load(ctx context.Context) (*Token, error)
	// Save replaces the stored token.
	Save(ctx context.Context, tok *Token) error
	// Clear removes the stored token. Clearing an empty store is not an error.
	Clear(ctx context.Context) error
}

// Swapper is an optional Store capability: save new only if the stored token is
// still old (compared by access token; nil old means "the store is empty").
// A Session uses it after a refresh so that a process that lost its lock cannot
// overwrite a newer token. swapped is false, with a nil error, when the stored
// token had changed.
type Swapper interface {
	CompareAndSwap(ctx context.Context, old, new *Token) (swapped bool, err error)
}

// Locker is an optional Store capability that serialises refreshes among every
// Session sharing the store, across processes. Lock blocks until the lock is
// held or ctx ends, and returns the function that releases it. A lock must not
// outlive a holder that dies (flock is released by the kernel, a Redis lock has
// a TTL).
//
// Lock may instead return ErrLockReleased when it waited and the holder
// released the lock: the holder has most likely just saved a new token.
// The Session then re-reads the store and adopts it, and calls Lock again
// only if it still has to refresh, so that the waiters of one refresh all
// adopt its token at once instead of each taking the lock in turn.
type Locker interface {
	Lock(ctx context.Context) (unlock func(), err error)
}

var (
	// ErrStoreCorrupt matches (with errors.Is) a Store's error for a record
	// that is there and cannot be read as a token: corrupted, altered, sealed
	// with a key the keyring lacks, or plain where only sealed records are
	// accepted. It does not pass by itself: log in again (the new record
	// replaces it), or configure the keyring that sealed it. A Session reports
	// it as a RefreshError of kind RefreshStoreUnreadable. Every error of
	// seal.Keyring.OpenToken matches it; a Store of your own should wrap it too.
	ErrStoreCorrupt = errors.New("authrefresh: the stored token record is unreadable")

	// ErrLockReleased is what a Locker's Lock may return, instead of the lock,
	// when the holder it waited for released it (see Locker).
	ErrLockReleased = errors.New("authrefresh: the refresh lock was released by its holder")
)

// MemoryStore is a Store in process memory. Its zero value is an empty store
// ready to use.
type MemoryStore struct {
	mu  sync.Mutex
	tok *Token
}

// NewMemoryStore returns a MemoryStore holding tok (which may be nil).
func NewMemoryStore(tok *Token) *MemoryStore { return &MemoryStore{tok: tok.clone()} }

// Load implements Store.
func (m *MemoryStore) Load(context.Context) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tok.clone(), nil
}

// Save implements Store.
func (m *MemoryStore) Save(_ context.Context, tok *Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tok = tok.clone()
	return nil
}

// Clear implements Store.
func (m *MemoryStore) Clear(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tok = nil
	return nil
}

// CompareAndSwap implements Swapper.
func (m *MemoryStore) CompareAndSwap(_ context.Context, old, new *Token) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.tok.SameCredential(old) {
		return false, nil
	}
	m.tok = new.clone()
	return true, nil
}
