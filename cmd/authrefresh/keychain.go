package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/seal"
	"github.com/zalando/go-keyring"
)

// keychainService names authrefresh's items in the OS keychain (macOS
// Keychain, Windows Credential Manager, the Secret Service on Linux).
const keychainService = "authrefresh"

// keychainStore keeps a profile's token in the OS keychain instead of a
// file: an item of keychainService whose account is the profile's token
// path (unique per profile and configuration directory). With seal keys
// the item is sealed too. Processes sharing the profile refresh once
// between them through a lock file beside where the token file would be.
type keychainStore struct {
	account string
	keys    *seal.Keyring    // nil: the item holds the token's JSON
	lock    *filestore.Store // used for its Lock only: nothing is saved there
}

// keychainError is a keychain that cannot be reached or used.
type keychainError struct{ err error }

func (e *keychainError) Error() string {
	return "the OS keychain: " + e.err.Error()
}

func (e *keychainError) Unwrap() error { return e.err }

func newKeychainStore(tokenPath string, keys *seal.Keyring) *keychainStore {
	return &keychainStore{account: tokenPath, keys: keys, lock: &filestore.Store{Path: tokenPath}}
}

// Load implements authrefresh.Store.
func (k *keychainStore) Load(context.Context) (*authrefresh.Token, error) {
	data, err := keyring.Get(keychainService, k.account)
	if errors.Is(err, keyring.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, &keychainError{err}
	}
	return k.keys.OpenToken([]byte(data), k.account)
}

// Save implements authrefresh.Store.
func (k *keychainStore) Save(_ context.Context, tok *authrefresh.Token) error {
	data, err := k.keys.SealToken(tok, k.account)
	if err != nil {
		return err
	}
	if err := keyring.Set(keychainService, k.account, string(data)); err != nil {
		return &keychainError{err}
	}
	return nil
}

// Clear implements authrefresh.Store.
func (k *keychainStore) Clear(context.Context) error {
	if err := keyring.Delete(keychainService, k.account); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return &keychainError{err}
	}
	return nil
}

// Lock implements authrefresh.Locker.
func (k *keychainStore) Lock(ctx context.Context) (func(), error) { return k.lock.Lock(ctx) }

// keychainReachable says why the OS keychain cannot be used here, or nil:
// a lookup of an item that does not exist must answer "not found".
func keychainReachable() error {
	_, err := keyring.Get(keychainService, "authrefresh: is the keychain reachable?")
	if err == nil || errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("no OS keychain answers here (%v)", err)
}
