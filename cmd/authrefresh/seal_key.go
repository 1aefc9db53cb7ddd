package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh/seal"
)

// runSealKey: authrefresh seal-key FILE — create a seal-key file, or rotate
// one: a new key goes first (it seals from now on) and the old ones stay, so
// tokens sealed with them still open.
func runSealKey(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("seal-key FILE", "Create a seal-key file (mode 0600) holding a new random AES-256 key, or, when FILE\nexists, rotate it: the new key seals every token saved from now on, and the old\nkeys stay so that tokens sealed with them still open (remove a key only once every\nprofile using it has been refreshed or logged in again). Keys are never printed.\nUse the file with login --seal-key FILE; or put its contents in $"+keyringEnv+" and use\n--seal-key env.", `  authrefresh seal-key ~/.config/authrefresh/seal-keys
  authrefresh login --url https://auth.example.com --seal-key ~/.config/authrefresh/seal-keys
`, stderr)
	if err := parse(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return flagError(flags, "want one argument: the seal-key file")
	}
	path := flags.Arg(0)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &keyringError{err}
	}
	if len(old) > 0 {
		if _, err := seal.ReadKeyring(path); err != nil {
			return &keyringError{err} // never rewrite a file we cannot read as a keyring
		}
	}
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	// When it was made, for the operator deciding which keys may go.
	id := time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(suffix[:])
	line, err := seal.NewKey(id)
	if err != nil {
		return err
	}
	if info, err := os.Stat(filepath.Dir(path)); err != nil || !info.IsDir() {
		return usageError{fmt.Sprintf("seal-key: the directory %s does not exist; create it first (mkdir -m 700)", filepath.Dir(path))}
	}
	text := "# authrefresh seal-key: the first key seals, every key opens\n" + line + "\n" + dropHeader(string(old))
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	k, err := seal.ReadKeyring(path)
	if err != nil {
		return &keyringError{err}
	}
	if len(old) == 0 {
		fmt.Fprintf(stdout, "created %s with key %s\n", path, id)
	} else {
		fmt.Fprintf(stdout, "added key %s to %s: it seals from now on; the %d older key(s) still open what they sealed\n", id, path, k.Len()-1)
	}
	return nil
}

// dropHeader removes the header line runSealKey writes, so rotations do not
// stack it.
func dropHeader(text string) string {
	return strings.TrimPrefix(text, "# authrefresh seal-key: the first key seals, every key opens\n")
}
