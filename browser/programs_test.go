package browser

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/internal/proctest"
)

// TestMain removes the programs the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if programs.dir != "" {
		os.RemoveAll(programs.dir)
	}
	os.Exit(code)
}

// programs are the executables the tests run as processes, built once:
// oauth2-proxy at the version the oauth2-proxy module pins, and this
// repository's authrefresh command.
var programs struct {
	once                     sync.Once
	dir                      string
	oauth2Proxy, authrefresh string
	err                      error
}

func build(tb testing.TB) (oauth2Proxy, authrefresh string) {
	tb.Helper()
	programs.once.Do(func() {
		programs.dir, programs.err = os.MkdirTemp("", "authrefresh-browser-")
		if programs.err != nil {
			return
		}
		for _, b := range []struct{ dir, out, pkg string }{
			{"oauth2-proxy", "oauth2-proxy", "github.com/oauth2-proxy/oauth2-proxy/v7"},
			{"..", "authrefresh", "./cmd/authrefresh"},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(programs.dir, b.out), b.pkg)
			cmd.Dir = b.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				programs.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
		programs.oauth2Proxy, programs.authrefresh = filepath.Join(programs.dir, "oauth2-proxy"), filepath.Join(programs.dir, "authrefresh")
	})
	if programs.err != nil {
		tb.Fatal(programs.err)
	}
	return programs.oauth2Proxy, programs.authrefresh
}

// freeAddr is a free loopback address, for a program that listens itself.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProgram runs a program until the test ends, and returns once a
// line of its output holds ready — or, when ready is a URL, once that
// answers 200 (polled, as for any server that does not say when it
// listens) — or fails with its output when it exits first, or is not
// ready within a minute. Its output is drained, and kept for the failure
// message. It returns the process's id.
func startProgram(tb testing.TB, env []string, ready, name string, args ...string) int {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := proctest.Start(cmd); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	tb.Cleanup(func() { cmd.Process.Kill(); <-exited })
	found := make(chan struct{})
	ok := sync.OnceFunc(func() { close(found) })
	var mu sync.Mutex
	var out []string
	go func() {
		lines := bufio.NewScanner(pr)
		for lines.Scan() {
			mu.Lock()
			if len(out) < 200 {
				out = append(out, lines.Text())
			}
			mu.Unlock()
			if strings.Contains(lines.Text(), ready) {
				ok()
			}
		}
	}()
	if strings.HasPrefix(ready, "http://") {
		go func() {
			for i := 0; i < 1200; i++ {
				if resp, err := http.Get(ready); err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok()
						return
					}
				}
				select {
				case <-exited:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}
	select {
	case <-found:
		return cmd.Process.Pid
	case <-exited:
	case <-time.After(time.Minute):
	}
	mu.Lock()
	defer mu.Unlock()
	tb.Fatalf("%s did not start:\n%s", filepath.Base(name), strings.Join(out, "\n"))
	return 0
}

// cpuTime is the CPU time process pid's threads have used so far, to the
// nanosecond, from /proc (each thread's schedstat: /proc/PID/stat counts in
// hundredths of a second, too coarse for turns of tens of milliseconds);
// 0 where there is none. A Go program's threads live as long as it does.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var sum time.Duration
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue
		}
		onCPU, _, _ := strings.Cut(string(stat), " ")
		ns, _ := strconv.ParseInt(onCPU, 10, 64)
		sum += time.Duration(ns)
	}
	return sum
}
