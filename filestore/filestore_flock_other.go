//go:build !unix

package filestore

import (
	"context"
	"sync"
)

// fileLocks serialises Sessions of one process on platforms without flock.
// Across processes there is no lock there; the compare-and-swap save still
// keeps a stale writer from overwriting a newer token.
var fileLocks sync.Map // path → chan struct{}

func lockFile(ctx context.Context, path string) (func(), error) {
	v, _ := fileLocks.LoadOrStore(path, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
