// Package tmpfs mounts small tmpfs file systems for tests of what a full or
// read-only disk does. Mounting needs root: elsewhere the tests are skipped,
// unless AUTHREFRESH_REQUIRE_TMPFS=1 (as .ci/run sets when it runs as root),
// which makes that a failure.
package tmpfs

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new directory, unmounted when the
// test ends, and returns the directory.
func Mount(t testing.TB, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		skip(t, fmt.Sprintf("cannot mount a tmpfs here (root needed): %v %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// ReadOnly remounts dir, a Mount, read-only.
func ReadOnly(t testing.TB, dir string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		skip(t, fmt.Sprintf("cannot remount read-only: %v %s", err, out))
	}
}

func skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("AUTHREFRESH_REQUIRE_TMPFS") == "1" {
		t.Fatal(why + " (AUTHREFRESH_REQUIRE_TMPFS=1)")
	}
	t.Skip(why)
}
