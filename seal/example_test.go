package seal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/seal"
)

// A keyring seals tokens at rest: the file holds no token, and opens only
// with the keyring, under its own name.
func ExampleKeyring() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	line, _ := seal.NewKey("2026-12") // keep it in a 0600 file, or a secret manager
	keys, _ := seal.ParseKeyring(line)

	store := &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName("alice")), Keyring: keys}
	_ = store.Save(context.Background(), &authrefresh.Token{AccessToken: "secret-access", RefreshToken: "secret-refresh"})
	data, _ := os.ReadFile(store.Path)
	fmt.Println("token in the file:", strings.Contains(string(data), "secret"))
	tok, _ := store.Load(context.Background())
	fmt.Println("opened:", tok.RefreshToken)

	copied := &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName("mallory")), Keyring: keys}
	_ = os.WriteFile(copied.Path, data, 0o600)
	_, err := copied.Load(context.Background())
	var sealed *seal.Error
	fmt.Println("copied to another user opens:", !errors.As(err, &sealed))
	// Output:
	// token in the file: false
	// opened: secret-refresh
	// copied to another user opens: false
}
