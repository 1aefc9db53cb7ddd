package filestore_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
)

// Sweep removes the token files saved before the cutoff, with their lock
// files, and leaves those saved since, and every other file, alone.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	save := func(key string, at time.Time) string {
		t.Helper()
		s := &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName(key))}
		if err := s.Save(ctx, &authrefresh.Token{AccessToken: "a-" + key}); err != nil {
			t.Fatal(err)
		}
		unlock, err := s.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
		if err := os.Chtimes(s.Path, at, at); err != nil {
			t.Fatal(err)
		}
		return filepath.Base(s.Path)
	}
	now := time.Now()
	old := save("ended-session", now.Add(-13*time.Hour))
	live := save("live-session", now.Add(-time.Minute))
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	os.Chtimes(filepath.Join(dir, "notes.txt"), now.Add(-48*time.Hour), now.Add(-48*time.Hour))
	n, err := filestore.Sweep(dir, now.Add(-12*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("swept %d (%v); want 1", n, err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{live, live + ".lock", "notes.txt"}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("left %v; want %v (swept %s)", left, want, old)
	}
	if _, err := filestore.Sweep(filepath.Join(dir, "missing"), now); err == nil {
		t.Fatal("a missing directory swept without an error")
	}
}
