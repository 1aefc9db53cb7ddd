package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if report := os.Getenv("AUTHREFRESH_TEST_BROWSER_REPORT"); report != "" {
		os.Exit(spyingBrowser(report, os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
			// The D-Bus session connection the OS keychain is reached
			// through is shared by the process for its life, by design.
			goleak.IgnoreAnyFunction("github.com/godbus/dbus/v5.(*Conn).inWorker"),
			goleak.IgnoreAnyFunction("github.com/godbus/dbus/v5.(*Conn).outWorker"),
			goleak.IgnoreAnyFunction("github.com/godbus/dbus/v5.newConn.func1"),
			// A login reaps the browser it opened whenever that exits (the
			// browser is the user's; the spying one of the tests exits just
			// after its report, and may outlive the test by a moment).
			goleak.IgnoreAnyFunction("github.com/authrefresh/authrefresh/cmd/authrefresh.reapBrowser")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// binary builds the real authrefresh command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "authrefresh-bin"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "authrefresh")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"demo", "--workers", "0"}, {"serve", "--expired-status", "500"}, {"demo", "extra"}} {
		if code := run(context.Background(), args, nil, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"demo", "--help"}, nil, &out, &out); code != exitOK || !strings.Contains(out.String(), "Examples:") {
		t.Fatalf("--help: %d %s", code, out.String())
	}
}

// Every exit code of the table in docs/cli.md, with its example.
func TestExitCodes(t *testing.T) {
	_, api, _ := loggedIn(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + closed.Addr().String()
	closed.Close()
	rows := []struct {
		code  int
		stdin string
		args  []string
		says  string
	}{
		{exitOK, "", []string{"request", "me"}, ""},
		{exitFailure, "registry.example.com\n", []string{"docker-credential", "get"}, ""},
		{exitUsage, "", []string{"request", "--no-such-flag"}, "-no-such-flag"},
		{exitUsage, "pw\n", []string{"login", "--url", "127.0.0.1:8080", "--username", "demo", "--password-stdin", "--profile", "typo"}, "did you mean http://127.0.0.1:8080"},
		{exitHTTP, "", []string{"request", "no/such/path"}, "404"},
		{exitNetwork, "pw\n", []string{"login", "--url", down, "--username", "demo", "--password-stdin", "--profile", "down"}, "try again"},
		{exitConfig, "pw\n", []string{"login", "--url", api + "/nowhere", "--username", "demo", "--password-stdin", "--profile", "typo"}, "404"},
		{exitLogin, "", []string{"request", "me", "--profile", "nobody"}, "authrefresh login"},
	}
	for _, r := range rows {
		code, _, errOut := cli(t, r.stdin, r.args...)
		if code != r.code || !strings.Contains(errOut, r.says) {
			t.Errorf("authrefresh %s: exit %d, want %d; stderr %q, want it to say %q", strings.Join(r.args, " "), code, r.code, errOut, r.says)
		}
	}
}

// Ctrl-C (SIGINT) during a call exits 130, as a shell reports it.
func TestInterruptedExits130(t *testing.T) {
	bin := binary(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := silent.Accept(); err == nil {
			accepted <- c
		}
	}()
	cmd := exec.Command(bin, "login", "--url", "http://"+silent.Addr().String(), "--username", "demo", "--password-stdin")
	cmd.Env = append(os.Environ(), "AUTHREFRESH_CONFIG_DIR="+t.TempDir())
	cmd.Stdin = strings.NewReader("pw\n")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := <-accepted // the login is waiting for an answer
	defer c.Close()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
		t.Fatalf("after Ctrl-C: %v, want exit %d", err, exitInterrupted)
	}
}
