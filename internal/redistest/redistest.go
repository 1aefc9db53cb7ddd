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
	"path/filepath"
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
	args []string // extra arguments
	conf string   // a sentinel's configuration file
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
	// repl-diskless-sync-delay 0: a replica syncs at once, not after 5 s.
	args := []string{"--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice", "--repl-diskless-sync-delay", "0"}
	if r.conf != "" {
		args = []string{r.conf, "--sentinel"}
	}
	cmd := exec.Command("redis-server", append(args, r.args...)...)
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
			if line := lines.Text(); strings.Contains(line, "Ready to accept connections") || strings.Contains(line, "Sentinel ID is") {
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

// StartWith starts redis-server with extra arguments (replication, cluster
// mode, a data directory) on a free loopback port.
func StartWith(t testing.TB, args ...string) *Server {
	t.Helper()
	r := Start(t)
	r.Stop()
	r.args = args
	r.Start()
	return r
}

// Port is the server's port.
func (r *Server) Port() string { return r.port }

// freePort returns a free loopback port.
func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// Sentinels starts n sentinels (redis-server --sentinel) watching master as
// "mymaster", with a quorum of n/2+1 and fast failure detection, and returns
// their addresses.
func Sentinels(t testing.TB, master *Server, n int) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < n; i++ {
		port := freePort(t)
		conf := filepath.Join(t.TempDir(), "sentinel.conf")
		body := fmt.Sprintf("port %s\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %s %d\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 2000\nsentinel parallel-syncs mymaster 1\n", port, master.port, n/2+1)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Server{t: t, port: port, conf: conf}
		s.Start()
		t.Cleanup(s.Stop)
		addrs = append(addrs, s.Addr())
	}
	return addrs
}

// Cluster starts n masters in cluster mode (no replicas), joins them with
// redis-cli --cluster create, waits until the cluster is ok, and returns them.
func Cluster(t testing.TB, n int) []*Server {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("AUTHREFRESH_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-cli not found and AUTHREFRESH_REQUIRE_REDIS=1")
		}
		t.Skip("redis-cli not installed (apt-get install redis-tools)")
	}
	var nodes []*Server
	var addrs []string
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		s := StartWith(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir, "--cluster-node-timeout", "2000")
		nodes = append(nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	if out, err := exec.Command("redis-cli", append(args, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// The nodes gossip the new configuration: every node must say ok, or
	// the one serving a slot answers CLUSTERDOWN while node 0 is already
	// ok (seen in 4 of 8 starts when only node 0 was asked). Bounded wait.
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for i := 0; ; i++ {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if i == 100 {
				c.Close()
				t.Fatalf("node %s did not become ok: %s", addr, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
	return nodes
}

// NodeID is the server's cluster node ID.
func (r *Server) NodeID(t testing.TB) string {
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	id, err := c.Do(context.Background(), "cluster", "myid").Text()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
