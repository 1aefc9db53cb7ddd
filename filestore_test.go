package authrefresh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileStoreCorruptFileIsClearErrorAndLoginRepairs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	fs := NewFileStore(path)
	if err := fs.Save(context.Background(), &Token{AccessToken: "a", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil { // truncated
		t.Fatal(err)
	}
	_, err := fs.Load(context.Background())
	var fe *FileStoreError
	if !errors.As(err, &fe) || fe.Op != "parse" || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a parse error naming the path", err)
	}
	s := NewSession(fs, RefreshFunc(func(context.Context, *Token) (*Token, error) { return nil, errors.New("unused") }), Options{})
	if _, err := s.Token(context.Background()); err == nil {
		t.Fatal("a corrupt store gave a token")
	}
	if err := s.Login(context.Background(), &Token{AccessToken: "new"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := fs.Load(context.Background()); err != nil || tok.AccessToken != "new" {
		t.Fatalf("after Login: %v %v", tok, err)
	}
}

func TestFileStoreRefusesReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	fs := NewFileStore(path)
	if err := fs.Save(context.Background(), &Token{AccessToken: "a"}); err != nil {
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
	a, b := NewFileStore(path), NewFileStore(path)
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
	fs := NewFileStore(filepath.Join(t.TempDir(), "tok.json"))
	ctx := context.Background()
	_ = fs.Save(ctx, &Token{AccessToken: "newer"})
	if ok, err := fs.CompareAndSwap(ctx, &Token{AccessToken: "older"}, &Token{AccessToken: "stale-save"}); ok || err != nil {
		t.Fatalf("stale swap: %v %v", ok, err)
	}
	if tok, _ := fs.Load(ctx); tok.AccessToken != "newer" {
		t.Fatalf("stale save overwrote the newer token: %s", tok.AccessToken)
	}
}
