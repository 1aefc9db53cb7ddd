package sidecar

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer for a logger written by server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// startProxy serves New(cfg) on a loopback port, accepting the Host
// values a client of that port sends (as the proxy command does), until the
// test ends.
func startProxy(tb testing.TB, cfg Config) *httptest.Server {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.LoginHint == "" {
		cfg.LoginHint = "log in again: authrefresh login --url URL"
	}
	srv := httptest.NewUnstartedServer(nil)
	if cfg.Guard.Hosts == nil {
		cfg.Guard.Hosts = LoopbackHosts(srv.Listener.Addr())
	}
	srv.Config.Handler = New(cfg)
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
