package authrefresh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// maxStoredTokenFile bounds what FileStore reads: a token file is a few KiB.
const maxStoredTokenFile = 1 << 20

// FileStore keeps one token in one JSON file, readable only by its owner.
//
// Writes are atomic (a temporary file in the same directory, fsync, rename), so
// a crash never leaves half a token behind. A file that is corrupted anyway is
// reported with an error naming the path, and the next Login overwrites it.
//
// FileStore is also a Locker: Lock takes an exclusive flock(2) on Path+".lock",
// so Sessions in several processes on one machine that share the file refresh
// once between them. The kernel drops the lock when its holder dies.
type FileStore struct {
	// Path of the token file. Its directory is created (mode 0700) on Save.
	Path string
	// AllowGroupReadable accepts a token file whose mode lets the group or
	// others read it; by default Load refuses it, as ssh refuses such a key.
	AllowGroupReadable bool
}

// NewFileStore returns a FileStore for path.
func NewFileStore(path string) *FileStore { return &FileStore{Path: path} }

// FileStoreError is the error of a token file that cannot be used; it names
// the path and never quotes the file's content.
type FileStoreError struct {
	Path string
	Op   string // "read", "parse", "write", "lock", "permissions"
	Err  error
}

func (e *FileStoreError) Error() string {
	return fmt.Sprintf("authrefresh: token file %s: %s: %v", e.Path, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *FileStoreError) Unwrap() error { return e.Err }

// Load implements Store.
func (f *FileStore) Load(context.Context) (*Token, error) {
	file, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &FileStoreError{f.Path, "read", err}
	}
	defer file.Close()
	if err := f.checkMode(file); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(file, maxStoredTokenFile+1))
	if err != nil {
		return nil, &FileStoreError{f.Path, "read", err}
	}
	return parseTokenFile(f.Path, data)
}

// parseTokenFile decodes a token file; an empty file is an empty store.
func parseTokenFile(path string, data []byte) (*Token, error) {
	if len(data) > maxStoredTokenFile {
		return nil, &FileStoreError{path, "read", fmt.Errorf("larger than %d bytes", maxStoredTokenFile)}
	}
	if len(data) == 0 {
		return nil, nil
	}
	var tok Token
	if err := json.Unmarshal(data, &tok); err != nil {
		// The json error may quote the file; say only where it broke.
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			err = fmt.Errorf("invalid JSON at byte %d (corrupted or truncated; log in again to repair it)", syn.Offset)
		} else {
			err = errors.New("not a token object (log in again to repair it)")
		}
		return nil, &FileStoreError{path, "parse", err}
	}
	if tok.AccessToken == "" {
		return nil, &FileStoreError{path, "parse", errors.New("no access_token (log in again to repair it)")}
	}
	return &tok, nil
}

func (f *FileStore) checkMode(file *os.File) error {
	if f.AllowGroupReadable || runtime.GOOS == "windows" {
		return nil
	}
	info, err := file.Stat()
	if err != nil {
		return &FileStoreError{f.Path, "read", err}
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return &FileStoreError{f.Path, "permissions", fmt.Errorf("mode %#o lets others read the token; run chmod 600 on it", perm)}
	}
	return nil
}

// Save implements Store: write a temporary file, fsync, rename over Path.
func (f *FileStore) Save(_ context.Context, tok *Token) error {
	if tok == nil {
		return f.Clear(context.Background())
	}
	data, err := json.MarshalIndent(tok, "", "  ")
	if err != nil {
		return &FileStoreError{f.Path, "write", err}
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &FileStoreError{f.Path, "write", err}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".tmp*") // mode 0600
	if err != nil {
		return &FileStoreError{f.Path, "write", err}
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return &FileStoreError{f.Path, "write", err}
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		return &FileStoreError{f.Path, "write", err}
	}
	if err := tmp.Sync(); err != nil {
		return &FileStoreError{f.Path, "write", err}
	}
	if err := tmp.Close(); err != nil {
		return &FileStoreError{f.Path, "write", err}
	}
	if err := os.Rename(tmpName, f.Path); err != nil {
		return &FileStoreError{f.Path, "write", err}
	}
	ok = true
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. Best effort: not every OS can fsync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Clear implements Store.
func (f *FileStore) Clear(context.Context) error {
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &FileStoreError{f.Path, "write", err}
	}
	return nil
}

// CompareAndSwap implements Swapper. It is atomic against other Sessions only
// while the caller holds Lock, as a Session does around a refresh.
func (f *FileStore) CompareAndSwap(ctx context.Context, old, new *Token) (bool, error) {
	cur, err := f.Load(ctx)
	var fe *FileStoreError
	if err != nil && !(errors.As(err, &fe) && fe.Op == "parse") {
		return false, err
	}
	// A corrupted file holds no newer token; replacing it is the repair.
	if err == nil && !sameAccess(cur, old) {
		return false, nil
	}
	return true, f.Save(ctx, new)
}

// Lock implements Locker with an exclusive flock on Path+".lock". It polls
// with a short capped backoff so that ctx can end the wait.
func (f *FileStore) Lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return nil, &FileStoreError{f.Path, "lock", err}
	}
	unlock, err := lockFile(ctx, f.Path+".lock")
	if err != nil {
		return nil, &FileStoreError{f.Path, "lock", err}
	}
	return unlock, nil
}
