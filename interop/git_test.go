package interop

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
)

// git as the consumer of the credential helper: Debian's git clones from
// and pushes to a smart-HTTP server (git's own http-backend behind a
// handler that accepts only a valid access token as the password), asking
// `authrefresh git-credential` each time. Across an access-token expiry
// the push gets a refreshed token: one refresh at the provider.
func TestGitCredentialHelper(t *testing.T) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		unavailable(t, "git is not installed (apt-get install git)")
	}
	cli := buildCLI(t)
	srv, err := authserver.New(authserver.Config{AccessTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	provider := httptest.NewServer(srv)
	defer provider.Close()

	root := t.TempDir()
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "AUTHREFRESH_CONFIG_DIR="+filepath.Join(home, "authrefresh"),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gitPath, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	git(root, "init", "--bare", "-q", "repo.git")
	git(filepath.Join(root, "repo.git"), "config", "http.receivepack", "true")

	var accepted, refused atomic.Int32
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"}, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	gitServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, password, ok := r.BasicAuth()
		check := httptest.NewRequest("GET", "/api/v1/me", nil)
		check.Header.Set("Authorization", "Bearer "+password)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, check)
		if !ok || rec.Code != http.StatusOK {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		accepted.Add(1)
		backend.ServeHTTP(w, r)
	}))
	defer gitServer.Close()

	login := exec.Command(cli, "login", "--url", provider.URL, "--api", gitServer.URL+"/", "--username", "demo", "--password-stdin")
	login.Env, login.Stdin = env, strings.NewReader("demo-password\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	helper := "credential.helper=!" + cli + " git-credential"
	work := filepath.Join(root, "work")
	git(root, "-c", "credential.helper=", "-c", helper, "clone", "-q", gitServer.URL+"/repo.git", work)
	os.WriteFile(filepath.Join(work, "a.txt"), []byte("one\n"), 0o600)
	git(work, "add", "a.txt")
	git(work, "commit", "-q", "-m", "one")
	git(work, "-c", "credential.helper=", "-c", helper, "push", "-q", "origin", "HEAD")

	// Across an expiry: the next push's helper refreshes, once.
	before := srv.Counters().Refreshes
	time.Sleep(2200 * time.Millisecond) // the token's 2-s lifetime passing, not a synchronisation
	os.WriteFile(filepath.Join(work, "b.txt"), []byte("two\n"), 0o600)
	git(work, "add", "b.txt")
	git(work, "commit", "-q", "-m", "two")
	git(work, "-c", "credential.helper=", "-c", helper, "push", "-q", "origin", "HEAD")
	refreshes := srv.Counters().Refreshes - before
	log := git(filepath.Join(root, "repo.git"), "log", "--oneline")
	t.Logf("git: clone and two pushes across an access-token expiry: %d refresh, %d requests accepted, %d refused (git's first, unauthenticated try of each command)", refreshes, accepted.Load(), refused.Load())
	if refreshes != 1 || !strings.Contains(log, "two") || !strings.Contains(log, "one") {
		t.Fatalf("%d refreshes (want 1); the server's log:\n%s", refreshes, log)
	}
}
