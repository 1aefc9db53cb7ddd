package filestore

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"github.com/authrefresh/authrefresh/internal/tmpfs"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/seal"
)

func TestFileStoreCorruptFileIsClearErrorAndLoginRepairs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	fs := New(path)
	if err := fs.Save(context.Background(), &authrefresh.Token{AccessToken: "a", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil { // truncated
		t.Fatal(err)
	}
	_, err := fs.Load(context.Background())
	var fe *Error
	if !errors.As(err, &fe) || fe.Op != "parse" || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a parse error naming the path", err)
	}
	s := authrefresh.NewSession(fs, authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
		return nil, errors.New("unused")
	}), authrefresh.Options{})
	if _, err := s.Token(context.Background()); err == nil {
		t.Fatal("a corrupt store gave a token")
	}
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "new"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := fs.Load(context.Background()); err != nil || tok.AccessToken != "new" {
		t.Fatalf("after Login: %v %v", tok, err)
	}
}

func TestFileStoreRefusesReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	fs := New(path)
	if err := fs.Save(context.Background(), &authrefresh.Token{AccessToken: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v, want a permissions error", err)
	}
}

func TestFileStoreLockExcludesAndHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	a, b := New(path), New(path)
	unlock, err := a.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v", err)
	}
	unlock()
	unlock2, err := b.Lock(context.Background())
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlock2()
}

func TestFileStoreCompareAndSwap(t *testing.T) {
	fs := New(filepath.Join(t.TempDir(), "tok.json"))
	ctx := context.Background()
	_ = fs.Save(ctx, &authrefresh.Token{AccessToken: "newer"})
	if ok, err := fs.CompareAndSwap(ctx, &authrefresh.Token{AccessToken: "older"}, &authrefresh.Token{AccessToken: "stale-save"}); ok || err != nil {
		t.Fatalf("stale swap: %v %v", ok, err)
	}
	if tok, _ := fs.Load(ctx); tok.AccessToken != "newer" {
		t.Fatalf("stale save overwrote the newer token: %s", tok.AccessToken)
	}
}

// newRefServer is the reference server on a fake clock, for tests inside the
// package (internal/authtest imports it, so it cannot be used here).
func newRefServer(t *testing.T) (*authserver.Server, string, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New()
	srv, err := authserver.New(authserver.Config{AccessTTL: 2 * time.Second, Clock: clock.Now, PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs.URL, clock
}

// A rotated token that cannot be saved (a full disk) is never silent: the
// Session serves it (it is valid), counts and reports the failure
// (Stats.StoreErrors, OnStoreError, StoreError), leaves no temporary file
// holding it, and saves it at the next refresh once the disk has room —
// refreshing with the newer token in memory, not the older one on disk.
func TestFileStoreFullDiskIsNeverSilent(t *testing.T) {
	srv, url, clock := newRefServer(t)
	dir := t.TempDir()
	fs := New(filepath.Join(dir, "tok.json"))
	var reported []error
	s := authrefresh.NewSession(fs, &jsonauth.Refresher{URL: url + "/auth/refresh"}, authrefresh.Options{Clock: clock.Now, OnStoreError: func(err error) { reported = append(reported, err) }})
	ctx := context.Background()
	login, err := jsonauth.Login(ctx, nil, url+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, login); err != nil {
		t.Fatal(err)
	}
	full := syscall.ENOSPC
	fs.write = func(*os.File, []byte) (int, error) { return 0, full }
	clock.Advance(3 * time.Second)
	tok, err := s.Token(ctx)
	if err != nil {
		t.Fatalf("the refreshed token must be served: %v", err)
	}
	if !errors.Is(s.StoreError(), syscall.ENOSPC) || len(reported) != 1 || s.Stats().StoreErrors != saveAttempts {
		t.Fatalf("StoreError %v, reported %v, store errors %d (one save and its retries)", s.StoreError(), reported, s.Stats().StoreErrors)
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, ".tok.json.tmp*")); len(temps) != 0 {
		t.Fatalf("temporary files left holding a token: %v", temps)
	}
	fs.write = nil // space again
	clock.Advance(3 * time.Second)
	next, err := s.Token(ctx)
	if err != nil || s.StoreError() != nil {
		t.Fatalf("after the disk has room: %v, StoreError %v", err, s.StoreError())
	}
	if saved, _ := fs.Load(ctx); saved.AccessToken != next.AccessToken || saved.Generation != tok.Generation+1 {
		t.Fatalf("saved %v, want the newest token", saved)
	}
	if srv.Counters().ReuseDetections != 0 {
		t.Fatal("the token on disk, already rotated away, was presented")
	}
}

// A symbolic link at Path is followed: the target is written atomically,
// the link stays a link, and Clear removes the target's token.
func TestFileStoreFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles", "token.json")
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "token.json")
	if err := os.Symlink("dotfiles/token.json", link); err != nil {
		t.Fatal(err)
	}
	fs := New(link)
	ctx := context.Background()
	for _, access := range []string{"first", "second"} {
		if err := fs.Save(ctx, &authrefresh.Token{AccessToken: access}); err != nil {
			t.Fatal(err)
		}
		info, err := os.Lstat(link)
		if err != nil || info.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link was replaced by a file: %v %v", info.Mode(), err)
		}
		if tok, err := New(target).Load(ctx); err != nil || tok.AccessToken != access {
			t.Fatalf("target holds %v %v, want %q", tok, err, access)
		}
	}
	if err := fs.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("Clear left the target's token: %v", err)
	}
}

// Temporary files a killed process left behind (each holds a token) are
// removed by the next Save once stale, and by Clear at once.
func TestFileStoreRemovesLeftoverTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tok.json")
	fs := New(path)
	old := filepath.Join(dir, ".tok.json.tmp123")
	fresh := filepath.Join(dir, ".tok.json.tmp456")
	for _, p := range []string{old, fresh} {
		_ = os.WriteFile(p, []byte(`{"access_token":"leaked"}`), 0o600)
	}
	past := time.Now().Add(-time.Minute)
	_ = os.Chtimes(old, past, past)
	if err := fs.Save(context.Background(), &authrefresh.Token{AccessToken: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatal("Save left a stale temporary file")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("Save removed a temporary file that may be another process's write in progress")
	}
	if err := fs.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tok.json.tmp*")); len(left) != 0 {
		t.Fatalf("Clear left %v", left)
	}
}

// A token file on a read-only file system still serves a valid token: the
// Session loads it without taking the lock (whose file cannot be created).
func TestReadOnlyStoreServesValidToken(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	path := filepath.Join(dir, "tok.json")
	now := time.Now()
	if err := New(path).Save(context.Background(), &authrefresh.Token{AccessToken: "still-valid-token", RefreshToken: "r", IssuedAt: now, Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tmpfs.ReadOnly(t, dir)
	s := authrefresh.NewSession(New(path), nil, authrefresh.Options{})
	tok, err := s.Token(context.Background())
	if err != nil || tok.AccessToken != "still-valid-token" {
		t.Fatalf("read-only store: %v %v", tok, err)
	}
}

func TestSealedFileStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k1 := authtest.Keyring(t, "k1")
	fs := &Store{Path: filepath.Join(dir, KeyFileName("alice")), Keyring: k1}
	s := authrefresh.NewSession(fs, authrefresh.RefreshFunc(func(_ context.Context, old *authrefresh.Token) (*authrefresh.Token, error) {
		return &authrefresh.Token{AccessToken: old.AccessToken + "+", RefreshToken: old.RefreshToken + "+", ExpiresIn: time.Hour}, nil
	}), authrefresh.Options{})
	if err := s.Login(ctx, &authrefresh.Token{AccessToken: "access-secret", RefreshToken: "refresh-secret", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(fs.Path)
	if strings.Contains(string(data), "secret") {
		t.Fatalf("the token file holds the token in the clear: %s", data)
	}
	if tok, err := fs.Load(ctx); err != nil || tok.RefreshToken != "refresh-secret+" {
		t.Fatalf("%v %v", tok, err)
	}

	// Copied to bob's file, it does not open, and a compare-and-swap does
	// not overwrite what may be a newer token it cannot read.
	bob := &Store{Path: filepath.Join(dir, KeyFileName("bob")), Keyring: k1}
	if err := os.WriteFile(bob.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := bob.Load(ctx)
	var fe *Error
	if !errors.As(err, &fe) || fe.Op != "seal" {
		t.Fatalf("got %v, want a seal error", err)
	}
	if ok, err := bob.CompareAndSwap(ctx, &authrefresh.Token{AccessToken: "x"}, &authrefresh.Token{AccessToken: "y"}); ok || err == nil {
		t.Fatalf("swapped over an unreadable record: %v %v", ok, err)
	}
	// Without its keyring, the file is a clear error.
	_, err = New(fs.Path).Load(ctx)
	sealErr(t, err, "no keyring")
}

// BenchmarkSealedStore: what sealing adds to a whole Save (temp file,
// fsync, rename) and Load, plain and sealed, in one run.
func BenchmarkSealedStore(b *testing.B) {
	tok := &authrefresh.Token{AccessToken: strings.Repeat("a", 800), RefreshToken: strings.Repeat("r", 64), Expiry: time.Unix(2e9, 0), IssuedAt: time.Unix(2e9-3600, 0), Generation: 12}
	k := authtest.Keyring(b, "k1")
	for _, c := range []struct {
		name string
		k    *seal.Keyring
	}{{"plain", nil}, {"sealed", k}} {
		fs := &Store{Path: filepath.Join(b.TempDir(), "alice.json"), Keyring: c.k}
		b.Run("filestore/save/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := fs.Save(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("filestore/load/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := fs.Load(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// saveAttempts is how often a Session tries to save a refreshed token the
// store refuses: once and seven retries.
const saveAttempts = 8

func sealErr(t *testing.T, err error, want string) {
	t.Helper()
	var se *seal.Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a seal.Error saying %q", err, want)
	}
}

func FuzzTokenFile(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expiry":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"access_token":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseTokenFile("/tmp/x.json", data, nil)
		if err == nil && tok != nil && tok.AccessToken == "" {
			t.Fatal("accepted a token file without an access token")
		}
	})
}

// Key names never collide as file names, and never leave their directory.
func FuzzKeyFileName(f *testing.F) {
	for _, k := range []string{"alice", "alice/../bob", "..", "", "a b", "ünïcödé", strings.Repeat("x", 1000), "k-alice", "CON", "a\x00b"} {
		f.Add(k, k+"x")
	}
	f.Add("alice", "Alice")
	f.Add("user_1", "USER_1")
	f.Fuzz(func(t *testing.T, a, b string) {
		na, nb := KeyFileName(a), KeyFileName(b)
		// strings.EqualFold: on a file system that ignores case (macOS,
		// Windows), names that differ only in case are one file.
		if a != b && strings.EqualFold(na, nb) {
			t.Fatalf("keys %q and %q share the file %q on a case-insensitive file system", a, b, na)
		}
		if strings.ContainsAny(na, "/\\\x00") || na == "." || na == ".." || len(na) > 255 || filepath.Base(na) != na {
			t.Fatalf("key %q gives the file name %q", a, na)
		}
	})
}
