package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/seal"
)

// maxStoredTokenFile bounds what Store reads: a token file is a few KiB.
const maxStoredTokenFile = 1 << 20

// Store keeps one token in one JSON file, readable only by its owner.
//
// Writes are atomic (a temporary file in the same directory, fsync, rename), so
// a crash never leaves half a token behind. A file that is corrupted anyway is
// reported with an error naming the path, and the next Login overwrites it.
//
// Store is also a Locker: Lock takes an exclusive flock(2) on Path+".lock",
// so Sessions in several processes on one machine that share the file refresh
// once between them. The kernel drops the lock when its holder dies.
//
// A Path that is a symbolic link (a dotfiles manager's, say) is followed
// deliberately: the token is written atomically next to the link's target,
// and the link stays a link. Temporary files a killed process left behind
// (".NAME.tmp*", each holding a token) are removed by the next Save and by
// Clear.
type Store struct {
	// Path of the token file. Its directory is created (mode 0700) on Save.
	Path string
	// AllowGroupReadable accepts a token file whose mode lets the group or
	// others read it; by default Load refuses it, as ssh refuses such a key.
	AllowGroupReadable bool
	// Keyring, if set, seals the token file (see seal.Keyring): a copy of it, a
	// backup, holds no usable credential. The record is bound to the file's
	// name (the last element of Path).
	Keyring *seal.Keyring

	// write writes the temporary file; nil means (*os.File).Write. Tests
	// make it fail as a full disk does.
	write func(*os.File, []byte) (int, error)
	// locks counts this Store's holds of its lock: while it holds it,
	// every other temporary file is a dead writer's (writers lock).
	locks atomic.Int32
}

// New returns a Store for path.
func New(path string) *Store { return &Store{Path: path} }

// Error is the error of a token file that cannot be used; it names
// the path and never quotes the file's content.
type Error struct {
	Path string
	Op   string // "read", "parse", "seal", "write", "lock", "permissions"
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("authrefresh: token file %s: %s: %v", e.Path, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Load implements Store.
func (f *Store) Load(context.Context) (*authrefresh.Token, error) {
	file, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{f.Path, "read", err}
	}
	defer file.Close()
	if err := f.checkMode(file); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(file, maxStoredTokenFile+1))
	if err != nil {
		return nil, &Error{f.Path, "read", err}
	}
	return parseTokenFile(f.Path, data, f.Keyring)
}

// parseTokenFile decodes a token file; an empty file is an empty store.
func parseTokenFile(path string, data []byte, k *seal.Keyring) (*authrefresh.Token, error) {
	if len(data) > maxStoredTokenFile {
		return nil, &Error{path, "read", fmt.Errorf("larger than %d bytes", maxStoredTokenFile)}
	}
	if len(data) == 0 {
		return nil, nil
	}
	tok, err := k.OpenToken(data, filepath.Base(path))
	if err != nil {
		op := "parse"
		if _, sealed := err.(*seal.Error); sealed {
			op = "seal" // not a corrupted file: a newer token may be in it
		}
		return nil, &Error{path, op, err}
	}
	return tok, nil
}

func (f *Store) checkMode(file *os.File) error {
	if f.AllowGroupReadable || runtime.GOOS == "windows" {
		return nil
	}
	info, err := file.Stat()
	if err != nil {
		return &Error{f.Path, "read", err}
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return &Error{f.Path, "permissions", fmt.Errorf("mode %#o lets others read the token; run chmod 600 on it", perm)}
	}
	return nil
}

// Save implements Store: write a temporary file, fsync, rename over the
// token file (the target of Path, when Path is a symbolic link). Saving nil
// clears the store.
func (f *Store) Save(_ context.Context, tok *authrefresh.Token) error {
	if tok == nil {
		return f.Clear(context.Background())
	}
	data, err := f.Keyring.SealToken(tok, filepath.Base(f.Path))
	if f.Keyring == nil {
		data, err = json.MarshalIndent(tok, "", "  ") // plain: readable
	}
	if err != nil {
		return &Error{f.Path, "write", err}
	}
	path, err := f.target()
	if err != nil {
		return &Error{f.Path, "write", err}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &Error{f.Path, "write", err}
	}
	tmp, err := os.CreateTemp(dir, tempPrefix(path)+"*") // mode 0600
	if err != nil {
		return &Error{f.Path, "write", err}
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok { // never leave a token behind in a temporary file
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return &Error{f.Path, "write", err}
	}
	write := f.write
	if write == nil {
		write = (*os.File).Write
	}
	if _, err := write(tmp, append(data, '\n')); err != nil {
		return &Error{f.Path, "write", err}
	}
	if err := tmp.Sync(); err != nil {
		return &Error{f.Path, "write", err}
	}
	if err := tmp.Close(); err != nil {
		return &Error{f.Path, "write", err}
	}
	if err := os.Rename(tmpName, path); err != nil {
		return &Error{f.Path, "write", err}
	}
	ok = true
	syncDir(dir)
	age := staleTemp
	if f.locks.Load() > 0 {
		age = 0 // under the lock, no other writer is alive
	}
	removeTemps(path, age)
	return nil
}

// tempPrefix is the name of path's temporary files, without the random part.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp" }

// staleTemp is how old a temporary file must be for a Save without the lock
// to take it for the leftover of a killed process (a Save takes
// milliseconds). Under the lock, as a Session saves, any is.
const staleTemp = 10 * time.Second

// removeTemps removes path's temporary files at least minAge old.
func removeTemps(path string, minAge time.Duration) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), globEscape(tempPrefix(path))+"*"))
	for _, m := range matches {
		if info, err := os.Lstat(m); err == nil && info.Mode().IsRegular() && time.Since(info.ModTime()) >= minAge {
			os.Remove(m)
		}
	}
}

// globEscape quotes the pattern characters of a file name.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// target is the file the token lives in: Path, or what the symbolic links
// at Path lead to (at most 8 of them; the last may not exist yet).
func (f *Store) target() (string, error) {
	path := f.Path
	for i := 0; i < 8; i++ {
		info, err := os.Lstat(path)
		if err != nil || info.Mode()&fs.ModeSymlink == 0 {
			return path, nil // not a link, or not there yet: the file to write
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", fmt.Errorf("more than 8 symbolic links")
}

// syncDir makes the rename durable. Best effort: not every OS can fsync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Clear implements Store: the token file (a link's target) and any
// temporary file of it are removed; a symbolic link at Path stays.
func (f *Store) Clear(context.Context) error {
	path, err := f.target()
	if err != nil {
		return &Error{f.Path, "write", err}
	}
	removeTemps(path, 0)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &Error{f.Path, "write", err}
	}
	return nil
}

// CompareAndSwap implements Swapper. It is atomic against other Sessions only
// while the caller holds Lock, as a Session does around a refresh.
func (f *Store) CompareAndSwap(ctx context.Context, old, new *authrefresh.Token) (bool, error) {
	cur, err := f.Load(ctx)
	var fe *Error
	if err != nil && !(errors.As(err, &fe) && fe.Op == "parse") {
		return false, err
	}
	// A corrupted file holds no newer token; replacing it is the repair.
	if err == nil && !cur.SameCredential(old) {
		return false, nil
	}
	return true, f.Save(ctx, new)
}

// Lock implements Locker with an exclusive flock on Path+".lock". It polls
// with a short capped backoff so that ctx can end the wait.
func (f *Store) Lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return nil, &Error{f.Path, "lock", err}
	}
	unlock, err := lockFile(ctx, f.Path+".lock")
	if err != nil {
		return nil, &Error{f.Path, "lock", err}
	}
	f.locks.Add(1)
	var once sync.Once
	return func() { once.Do(func() { f.locks.Add(-1); unlock() }) }, nil
}

// KeyFileName is a file name for key's Store that no other key shares,
// on any file system, and that stays inside its directory whatever the key
// holds (separators, dots, unicode, a kilobyte of text): a plain key (lower
// case letters, digits, - and _, at most 64) is kept readable, anything
// else is its SHA-256 in hex. Two keys that differ only in case ("alice",
// "Alice") name two files even where the file system ignores case (macOS,
// Windows).
//
// Keys with capital letters were kept readable before (k-Alice.token.json);
// their files now have the hashed name: rename each to KeyFileName(key)
// (in a shell: h-$(printf %s "$KEY" | sha256sum | cut -c1-64).token.json).
func KeyFileName(key string) string {
	if plainKey(key) {
		return "k-" + key + ".token.json"
	}
	sum := sha256.Sum256([]byte(key))
	return "h-" + hex.EncodeToString(sum[:]) + ".token.json"
}

// plainKey reports whether key can name its file as it is: lower case
// only, so that no two plain keys differ only in case.
func plainKey(key string) bool {
	if key == "" || len(key) > 64 {
		return false
	}
	return strings.IndexFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}
