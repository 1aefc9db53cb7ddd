package authrefresh_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// With a filestore.Store, a new Session (a new process) on the same file uses the
// rotated refresh token, not the one it logged in with.
func TestFileStoreCarriesRotatedToken(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	path := filepath.Join(t.TempDir(), "token.json")
	first := e.Session(filestore.New(path), authrefresh.Options{})
	if _, err := first.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v", err, info.Mode())
	}
	e.Clock.Advance(3 * time.Second)
	second := authrefresh.NewSession(filestore.New(path), e.Refresher(), authrefresh.Options{Clock: e.Clock.Now})
	if err := e.Client(second).Get(context.Background(), "me", nil); err != nil {
		t.Fatalf("second process: %v", err)
	}
	if got := e.Auth.Counters(); got.ReuseDetections != 0 || got.Refreshes != 2 {
		t.Fatalf("reuse=%d refreshes=%d: the second Session must use the rotated token", got.ReuseDetections, got.Refreshes)
	}
}
