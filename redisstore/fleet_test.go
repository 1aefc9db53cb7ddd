package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/redis/go-redis/v9"
)

// fleetChildEnv makes the test binary act as one member of a fleet: see
// runFleetMember. The parent re-executes itself, so every member is a real OS
// process with its own Session, memory and connections.
const fleetChildEnv = "AUTHREFRESH_FLEET_MEMBER"

func init() {
	if os.Getenv(fleetChildEnv) == "1" {
		os.Exit(runFleetMember())
	}
}

// fleetReport is what a member prints on stdout when done.
type fleetReport struct {
	Requests, Failures int64
	FirstFailure       string
	Refreshes, Adopted uint64
	// Expired counts calls that failed because the session ended;
	// Stalled those that waited for a refresh until their deadline;
	// Untyped those whose error is neither transient nor an API answer.
	Expired, Stalled, Untyped int64
}

// fleetClient connects to Redis as a fleet member does: where is one
// address, or a comma-separated list of sentinels or cluster nodes.
func fleetClient(kind, where string) redis.UniversalClient {
	addrs := strings.Split(where, ",")
	timeouts := func(o *redis.UniversalOptions) *redis.UniversalOptions {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
		return o
	}
	switch kind {
	case "sentinel":
		return redis.NewUniversalClient(timeouts(&redis.UniversalOptions{Addrs: addrs, MasterName: "mymaster"}))
	case "cluster":
		return redis.NewClusterClient(timeouts(&redis.UniversalOptions{Addrs: addrs}).Cluster())
	}
	return redis.NewClient(&redis.Options{Addr: where})
}

// runFleetMember: 50 goroutines call the API through one Session on the
// shared store (Redis or a file) for the given duration, paced like steady
// traffic.
func runFleetMember() int {
	if os.Getenv("FLEET_MODE") == "keyed" {
		return runKeyedMember()
	}
	api, storeKind, where := os.Getenv("FLEET_API"), os.Getenv("FLEET_STORE"), os.Getenv("FLEET_WHERE")
	dur, _ := time.ParseDuration(os.Getenv("FLEET_DURATION"))
	var store authrefresh.Store
	switch storeKind {
	case "redis", "sentinel", "cluster":
		rc := fleetClient(storeKind, where)
		defer rc.Close()
		rs := redisstore.New(rc, "fleet-processes")
		rs.LockTTL, _ = time.ParseDuration(os.Getenv("FLEET_LOCK_TTL")) // "" → default
		rs.WaitReplicas, _ = strconv.Atoi(os.Getenv("FLEET_WAIT"))
		if os.Getenv("FLEET_DEBUG") == "1" {
			rs.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		store = rs
	default:
		store = filestore.New(where)
	}
	timeout, _ := time.ParseDuration(os.Getenv("FLEET_REFRESH_TIMEOUT"))
	opts := authrefresh.Options{RefreshTimeout: timeout}
	if os.Getenv("FLEET_DEBUG") == "1" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := authrefresh.NewSession(store, &jsonauth.Refresher{URL: api + "/auth/refresh"}, opts)
	c, err := authrefresh.NewClient(api+"/api/v1/", s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv("FLEET_MODE") == "one-request" { // the holder that will be killed
		err := c.Get(context.Background(), "me", nil)
		fmt.Println(err)
		return 0
	}
	var rep fleetReport
	var mu sync.Mutex
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				err := c.Get(context.Background(), "me", nil)
				atomic.AddInt64(&rep.Requests, 1)
				if err != nil {
					if atomic.AddInt64(&rep.Failures, 1) == 1 {
						mu.Lock()
						rep.FirstFailure = err.Error()
						mu.Unlock()
					}
					var apiErr *authrefresh.APIError
					switch {
					case errors.Is(err, authrefresh.ErrSessionExpired):
						atomic.AddInt64(&rep.Expired, 1)
					case errors.Is(err, authrefresh.ErrRefreshCancelled):
						atomic.AddInt64(&rep.Stalled, 1)
					case !errors.Is(err, authrefresh.ErrRefreshTransient) && !errors.As(err, &apiErr):
						atomic.AddInt64(&rep.Untyped, 1)
					}
				}
				time.Sleep(250 * time.Millisecond) // pacing: steady traffic, not a flood of 2 cores
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	rep.Refreshes, rep.Adopted = st.Refreshes, st.Adopted
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

// Eight OS processes × 50 goroutines share one session for five lifetimes of
// 2-second tokens, through Redis and through one file: the server sees one
// refresh per refresh-ahead interval for the whole fleet, no reuse, no
// failed request.
func TestFleetOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 2 × 10 s of real time")
	}
	for _, kind := range []string{"redis", "file"} {
		t.Run(kind, func(t *testing.T) {
			as := authtest.StartRealClock(t, authserver.Config{AccessTTL: 2 * time.Second})
			srv, hs := as.Auth, as.HTTP
			var store authrefresh.Store
			where := filepath.Join(t.TempDir(), "token.json")
			if kind == "redis" {
				r := startRedis(t)
				where = r.Addr()
				store = redisstore.New(r.Client(t), "fleet-processes")
			} else {
				store = filestore.New(where)
			}
			tok := as.Login()
			if err := authrefresh.NewSession(store, nil, authrefresh.Options{}).Login(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			start := time.Now() // the login token's lifetime starts here
			const members = 8
			duration := 10 * time.Second
			reports := spawnFleet(t, hs.URL, kind, where, members, duration, nil, func() {})
			elapsed := time.Since(start)
			var requests, failures int64
			for i, r := range reports {
				requests += r.Requests
				failures += r.Failures
				if r.FirstFailure != "" {
					t.Errorf("member %d: %s", i, r.FirstFailure)
				}
			}
			got := srv.Counters()
			// Refresh-ahead renews at 3/4 of each 2-s lifetime; a loaded machine
			// can only push that later, never past expiry without a failure. So
			// the fleet's count lies between one per lifetime of traffic (the
			// members' run, not the time they took to start) and one per 1.5 s.
			low, high := duration.Seconds()/2-1, elapsed.Seconds()/1.5+1
			t.Logf("%s: %d processes, %d requests, %d failed, %d refreshes for %.1f s (%.1f lifetimes), reuse %d, 401s %d",
				kind, members, requests, failures, got.Refreshes, elapsed.Seconds(), elapsed.Seconds()/2, got.ReuseDetections, got.Unauthorized401s())
			if failures != 0 || got.ReuseDetections != 0 || requests == 0 {
				t.Fatalf("failures=%d reuse=%d", failures, got.ReuseDetections)
			}
			if n := float64(got.Refreshes); n < low || n > high {
				t.Fatalf("refreshes=%d, want %.1f to %.1f", got.Refreshes, low, high)
			}
		})
	}
}

// The lock holder dies (SIGKILL) in the middle of a slow refresh: its lock
// expires after the TTL, another process takes over, refreshes with the same
// (never rotated) refresh token, and nobody is logged out.
func TestLockHolderKilledMidRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes and a 2-s refresh")
	}
	r := startRedis(t)
	as := authtest.StartRealClock(t, authserver.Config{AccessTTL: time.Minute})
	srv, hs := as.Auth, as.HTTP
	tok := as.Login()
	tok.Expiry = time.Now().Add(-time.Second) // already expired: the first request must refresh
	store := redisstore.New(r.Client(t), "fleet-processes")
	if err := authrefresh.NewSession(store, nil, authrefresh.Options{}).Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	srv.SetRefreshLatency(2 * time.Second)

	holder := exec.Command(os.Args[0], "-test.run=^$")
	// The holder's lock outlives its refresh timeout (3 s) by a second, as
	// LockTTL must; the server takes 2 s per refresh.
	holder.Env = append(os.Environ(), fleetChildEnv+"=1", "FLEET_MODE=one-request", "FLEET_LOCK_TTL=4s", "FLEET_REFRESH_TIMEOUT=3s", "FLEET_API="+hs.URL, "FLEET_STORE=redis", "FLEET_WHERE="+r.Addr())
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the holder's refresh reached the server (it holds the lock then).
	lockKey := "authrefresh:{fleet-processes}:lock"
	admin := r.Client(t)
	for i := 0; srv.Counters().Requests["/auth/refresh"] == 0; i++ {
		if i > 1000 {
			t.Fatal("the holder never started its refresh")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition in another process, bounded
	}
	if admin.Exists(context.Background(), lockKey).Val() != 1 {
		t.Fatal("the holder refreshes without holding the lock")
	}
	_ = holder.Process.Kill() // SIGKILL: no unlock, no cleanup
	_ = holder.Wait()

	// Another process (here: a Session with its own connection) takes over.
	heir := redisstore.New(r.Client(t), "fleet-processes")
	heir.LockTTL, heir.PollInterval = 4*time.Second, 100*time.Millisecond
	s := authrefresh.NewSession(heir, &jsonauth.Refresher{URL: hs.URL + "/auth/refresh"}, authrefresh.Options{RefreshTimeout: 10 * time.Second})
	c, _ := authrefresh.NewClient(hs.URL+"/api/v1/", s)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Get(ctx, "me", nil); err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	got := srv.Counters()
	t.Logf("took over after %v; server: %d refreshes, %d failed, %d reuse", time.Since(start).Round(time.Millisecond), got.Refreshes, got.RefreshFailures, got.ReuseDetections)
	if got.Refreshes != 1 || got.ReuseDetections != 0 || s.Stats().Rejections != 0 {
		t.Fatalf("refreshes=%d reuse=%d rejections=%d", got.Refreshes, got.ReuseDetections, s.Stats().Rejections)
	}
}
