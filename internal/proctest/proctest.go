// Package proctest runs the programs tests start as servers (a provider,
// a proxy, this repository's own command) so that they die with the test
// binary, and runs panva's oidc-provider (interop/oidc-provider/server.mjs)
// for the interop and browser modules, reading what it counted.
package proctest

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Start starts cmd so that the kernel kills it when the test binary dies,
// even when a timeout kills that (on Linux; elsewhere it is only started).
func Start(cmd *exec.Cmd) error {
	dieWithParent(cmd)
	return cmd.Start()
}

// OIDCProvider runs dir/server.mjs (dir is the interop/oidc-provider
// folder, with its npm install) with env added, until the test ends, and
// returns its issuer. Without node or the install it calls unavailable
// with the reason, which skips or fails as the caller's module requires.
func OIDCProvider(tb testing.TB, dir string, unavailable func(why string), env ...string) string {
	tb.Helper()
	dir, _ = filepath.Abs(dir)
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("no node on PATH (then: cd interop/oidc-provider && npm ci)")
		return ""
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		unavailable("oidc-provider is not installed (cd interop/oidc-provider && npm ci)")
		return ""
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdin, _ := cmd.StdinPipe() // closed when the test ends: the server exits
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := Start(cmd); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		var ready struct{ Issuer string }
		if json.Unmarshal(lines.Bytes(), &ready) == nil && ready.Issuer != "" {
			go io.Copy(io.Discard, out) // keep draining its stdout
			return ready.Issuer
		}
	}
	tb.Fatalf("oidc-provider exited before listening: %v", lines.Err())
	return ""
}

// OIDCCounts is what server.mjs saw (GET /_counts): refresh_token grants,
// and errors by endpoint and code ("token:invalid_grant").
type OIDCCounts struct {
	Refreshes int            `json:"refreshes"`
	Errors    map[string]int `json:"errors"`
	// Clients are the same by client, the errors with their detail
	// ("token:invalid_grant: refresh token already used").
	Clients map[string]struct {
		Refreshes int            `json:"refreshes"`
		Errors    map[string]int `json:"errors"`
	} `json:"clients"`
}

// OIDCCountsOf is what the oidc-provider at issuer counted so far.
func OIDCCountsOf(tb testing.TB, issuer string) OIDCCounts {
	tb.Helper()
	resp, err := http.Get(issuer + "/_counts")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var c OIDCCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		tb.Fatal(err)
	}
	return c
}
