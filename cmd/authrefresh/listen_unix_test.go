//go:build unix

package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/sidecar"
)

// The unix-socket listener is 0600 from the start and serves any Host.
func TestProxyUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "arp") // short: a socket path has a ~100-byte limit
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "proxy.sock")
	ln, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v", info.Mode(), err)
	}
	session := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	if err := session.Login(context.Background(), &authrefresh.Token{AccessToken: "the-session-credential"}); err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) })
	up := httptest.NewServer(upstream)
	defer up.Close()
	target, _ := url.Parse(up.URL)
	srv := &http.Server{Handler: sidecar.New(sidecar.Config{Session: session, Upstream: target})}
	go srv.Serve(ln)
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || requests.Load() != 1 {
		t.Fatalf("through the socket: %d", resp.StatusCode)
	}
	if _, err := listenUnix(path); err == nil {
		t.Fatal("a second proxy took over a live socket")
	}
	regular := filepath.Join(dir, "file")
	_ = os.WriteFile(regular, nil, 0o600)
	if _, err := listenUnix(regular); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("a regular file replaced: %v", err)
	}
}
