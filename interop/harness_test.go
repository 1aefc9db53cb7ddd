package interop

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/proctest"
)

// unavailable is a provider that cannot run here: a skip with the hint,
// or a failure under AUTHREFRESH_REQUIRE_INTEROP=1 (as .ci/run sets).
func unavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("AUTHREFRESH_REQUIRE_INTEROP") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// built are the folders the programs were built into, removed when the
// test binary ends (59 MB a run were left behind).
var built struct {
	sync.Mutex
	dirs []string
}

func TestMain(m *testing.M) {
	code := m.Run()
	built.Lock()
	for _, dir := range built.dirs {
		os.RemoveAll(dir)
	}
	built.Unlock()
	os.Exit(code)
}

// server starts cmd, a provider or helper, so that it dies with the test
// binary even when a timeout kills it (Hydra was left running with no
// parent).
func server(cmd *exec.Cmd) error { return proctest.Start(cmd) }

// program is a binary the tests build once per test binary.
type program struct {
	once sync.Once
	bin  string
	err  error
}

// build runs command (which writes the binary to its argument) the first
// time, and returns the binary.
func (p *program) build(name string, command func(out string) *exec.Cmd) (string, error) {
	p.once.Do(func() {
		dir, err := os.MkdirTemp("", "authrefresh-interop-"+name)
		if err != nil {
			p.err = err
			return
		}
		built.Lock()
		built.dirs = append(built.dirs, dir)
		built.Unlock()
		p.bin = filepath.Join(dir, name)
		if out, err := command(p.bin).CombinedOutput(); err != nil {
			p.err = &buildError{name: name, out: string(out), err: err}
		}
	})
	return p.bin, p.err
}

type buildError struct {
	name, out string
	err       error
}

func (e *buildError) Error() string {
	return "building " + e.name + ": " + e.err.Error() + "\n" + e.out
}

// loadReport is what the callers of callUnderLoad saw.
type loadReport struct {
	calls, failures int64
	first           error
	elapsed         time.Duration
}

// callUnderLoad has n callers GET url through api, each in a loop, for d.
func callUnderLoad(api *http.Client, url string, n int, d time.Duration) loadReport {
	began := time.Now()
	end := began.Add(d)
	var calls, failures atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				resp, err := api.Get(url)
				calls.Add(1)
				if err != nil || resp.StatusCode != 200 {
					if failures.Add(1) == 1 {
						first.Store(errors.Join(err, statusErr(resp)))
					}
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	r := loadReport{calls: calls.Load(), failures: failures.Load(), elapsed: time.Since(began)}
	r.first, _ = first.Load().(error)
	return r
}

// checkLoad logs the run and fails it for any failed call, or for
// refreshes that do not follow the expiries of tokens that live life (as
// announced): at least one an expiry crossed, at most one per half a
// lifetime and one more (refresh-ahead comes at 0.75; a provider whose
// whole-second rounding ends a token sooner adds a refresh on refusal now
// and then), and never one per ten calls.
func checkLoad(t *testing.T, provider string, r loadReport, refreshes int, life time.Duration) {
	t.Helper()
	expiries := float64(r.elapsed) / float64(life)
	t.Logf("%s userinfo: %d calls by 200 callers in %v (%.1f access-token lifetimes of %v as announced): %d refreshes, %d failures",
		provider, r.calls, r.elapsed.Round(time.Millisecond), expiries, life, refreshes, r.failures)
	if r.failures != 0 {
		t.Fatalf("%d of %d calls failed; first: %v", r.failures, r.calls, r.first)
	}
	if refreshes < int(expiries) || float64(refreshes) > float64(r.elapsed)/(0.5*float64(life))+1 || int64(refreshes) >= r.calls/10 {
		t.Fatalf("%d refreshes over %.1f lifetimes and %d calls", refreshes, expiries, r.calls)
	}
}

// endsOnceAfterRevocation revokes cur at the provider (another device
// logged out), then has 50 concurrent refreshes of a Session holding it:
// all must see the session end, and OnSessionExpired run once. The Session
// is a new one, so that no refresh of the load's Session (refresh-ahead
// still in flight) can rotate past the revoked token first.
func endsOnceAfterRevocation(t *testing.T, refresher authrefresh.Refresher, cur *authrefresh.Token, revoker authrefresh.Revoker) {
	t.Helper()
	ctx := context.Background()
	var ended atomic.Int64
	s := authrefresh.NewSession(nil, refresher, authrefresh.Options{RefreshAhead: -1, OnSessionExpired: func(error) { ended.Add(1) }})
	if err := s.Login(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if err := revoker.Revoke(ctx, cur); err != nil {
		t.Fatalf("revocation: %v", err)
	}
	errs := make(chan error, 50)
	for range 50 {
		go func() { _, err := s.Refresh(ctx); errs <- err }()
	}
	for range 50 {
		if err := <-errs; !errors.Is(err, authrefresh.ErrSessionExpired) {
			t.Fatalf("after revocation: %v", err)
		}
	}
	if ended.Load() != 1 {
		t.Fatalf("OnSessionExpired called %d times; want 1", ended.Load())
	}
}
