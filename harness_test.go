package authrefresh_test

import (
	"testing"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The shared harness under the short names these tests use.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New() }

var (
	runParallel = authtest.RunParallel
	countErrors = authtest.CountErrors
)

// env is the reference server on a fake clock (see internal/authtest).
type env struct {
	*authtest.Server
	t      *testing.T
	clock  *fakeClock
	server *authserver.Server
}

func newEnv(t *testing.T, cfg authserver.Config) *env {
	t.Helper()
	s := authtest.Start(t, cfg)
	return &env{Server: s, t: t, clock: s.Clock, server: s.Auth}
}

func (e *env) login() *authrefresh.Token                         { return e.Login() }
func (e *env) refresher() *authrefresh.JSONRefresher             { return e.Refresher() }
func (e *env) client(s *authrefresh.Session) *authrefresh.Client { return e.Client(s) }
func (e *env) session(store authrefresh.Store, opts authrefresh.Options) *authrefresh.Session {
	return e.Session(store, opts)
}
