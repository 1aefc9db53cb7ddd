package filestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
)

// A token file outlives the process: the next run starts logged in, and
// every process sharing the file refreshes once between them.
func ExampleStore() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	store := filestore.New(filepath.Join(dir, "token.json"))

	ctx := context.Background()
	_ = store.Save(ctx, &authrefresh.Token{AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)})
	info, _ := os.Stat(store.Path)
	tok, err := store.Load(ctx)
	fmt.Println(info.Mode().Perm(), tok.RefreshToken, err)
	// Output: -rw------- r <nil>
}

// One file per user in one directory, whatever the user's name holds.
func ExampleKeyFileName() {
	fmt.Println(filestore.KeyFileName("alice"))
	fmt.Println(filestore.KeyFileName("../Alice")[:10])
	// Output:
	// k-alice.token.json
	// h-162a407a
}
