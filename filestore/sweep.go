package filestore

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sweep removes from dir the token files (named by KeyFileName) last saved
// before before, with their lock files and the temporary files of their
// saves, and returns how many token files it removed. Every other file is
// left alone. It is for a directory of many sessions of which some end
// unused and are never cleared, such as a backend-for-frontend's: sweep
// only what no session can still need (a session in use has saved its
// token since before, or it would have been refused already: for a BFF,
// before its sessions' absolute lifetime).
func Sweep(dir string, before time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, &Error{dir, "sweep", err}
	}
	removed := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".token.json") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		info, err := os.Lstat(path)
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(before) {
			continue
		}
		if os.Remove(path) == nil {
			removed++
			os.Remove(path + ".lock")
			removeTemps(path, 0)
		}
	}
	return removed, nil
}
