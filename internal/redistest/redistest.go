// Package redistest starts a real redis-server on a free loopback port for
// tests, without persistence, and stops it with the test.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a real redis-server on a free loopback port, without
// persistence, stopped by the test.
type Server struct {
	t    testing.TB
	port string
	cmd  *exec.Cmd
}

// Start starts redis-server, or skips the test when it is not installed
// (unless AUTHREFRESH_REQUIRE_REDIS=1, as in CI, which makes that a failure).
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("AUTHREFRESH_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found and AUTHREFRESH_REQUIRE_REDIS=1")
		}
		t.Skip("redis-server not installed: apt-get install redis-server (or brew install redis) to run the Redis tests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	r := &Server{t: t, port: port}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port.
func (r *Server) Addr() string { return "127.0.0.1:" + r.port }

// Start runs redis-server and returns once it says it accepts connections.
func (r *Server) Start() {
	r.t.Helper()
	cmd := exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			if strings.Contains(lines.Text(), "Ready to accept connections") {
				ready <- nil
				for lines.Scan() { // keep draining so redis never blocks on its stdout
				}
				return
			}
		}
		ready <- fmt.Errorf("redis-server exited before it was ready")
	}()
	select {
	case err := <-ready:
		if err != nil {
			r.t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		r.t.Fatal("redis-server did not start in 10s")
	}
	r.cmd = cmd
}

// Stop kills the server (a crash, as far as clients can tell).
func (r *Server) Stop() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Client returns a connected client closed by the test.
func (r *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return c
}
