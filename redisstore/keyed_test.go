package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/keyed"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/redis/go-redis/v9"
)

// keyedReport is what a keyed fleet member prints when done.
type keyedReport struct {
	Calls, Failures, Expired int64
	FirstFailure             string
	Refreshes, Adopted       uint64
	Stats                    authrefresh.Stats
}

// memberLogger is a fleet member's warnings, on stderr with FLEET_DEBUG=1.
var memberLogger = func() *slog.Logger {
	if os.Getenv("FLEET_DEBUG") != "1" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}()

// keyedSessions is a process's keyed.Manager over Redis: one redisstore session
// per key.
func keyedSessions(rc redis.UniversalClient, api string, timeout time.Duration) *keyed.Manager {
	return &keyed.Manager{MaxIdle: -1, New: func(key string) (keyed.Spec, error) {
		return keyed.Spec{
			Store:     redisstore.New(rc, key),
			Refresher: &jsonauth.Refresher{URL: api + "/auth/refresh"},
			Options:   authrefresh.Options{RefreshJitter: 0.1, RefreshTimeout: timeout, Logger: memberLogger},
		}, nil
	}}
}

// runKeyedMember: FLEET_KEYS keys shared through Redis, asked for their
// tokens by 16 goroutines, in rounds over all keys with a FLEET_PAUSE
// pause, for FLEET_DURATION.
func runKeyedMember() int {
	api, where := os.Getenv("FLEET_API"), os.Getenv("FLEET_WHERE")
	dur, _ := time.ParseDuration(os.Getenv("FLEET_DURATION"))
	keys, _ := strconv.Atoi(os.Getenv("FLEET_KEYS"))
	pause, _ := time.ParseDuration(os.Getenv("FLEET_PAUSE"))
	rc := redis.NewClient(&redis.Options{Addr: where, PoolSize: 64})
	defer rc.Close()
	users := keyedSessions(rc, api, 10*time.Second)
	var rep keyedReport
	var mu sync.Mutex
	ctx := context.Background()
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("user-%05d", i)
	}
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ { // a server's concurrent requests, each for some user
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				for i := g; i < keys; i += 16 {
					_, err := users.Token(ctx, names[i])
					mu.Lock()
					rep.Calls++
					if err != nil {
						rep.Failures++
						if errors.Is(err, authrefresh.ErrSessionExpired) {
							rep.Expired++
						}
						if rep.FirstFailure == "" {
							rep.FirstFailure = err.Error()
						}
					}
					mu.Unlock()
				}
				time.Sleep(pause) // pacing: steady traffic, not a flood of 2 cores
			}
		}()
	}
	wg.Wait()
	st, _ := users.Stats()
	rep.Refreshes, rep.Adopted, rep.Stats = st.Refreshes, st.Adopted, st
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

// commandStats is Redis's count of calls per command.
func commandStats(tb testing.TB, rc *redis.Client) map[string]int64 {
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	calls := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		calls[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return calls
}

// keyedFleet logs keys users in, then runs members OS processes sharing
// them through one Redis for duration; it returns the members' reports,
// the server's counters and the Redis commands run meanwhile.
func keyedFleet(tb testing.TB, members, keys int, ttl, duration, pause time.Duration) ([]keyedReport, authserver.Counters, map[string]int64) {
	as := authtest.StartRealClock(tb, authserver.Config{AccessTTL: ttl, LoginFailuresPerUser: -1, LoginFailuresPerIP: -1})
	r := startRedis(tb)
	rc := r.Client(tb)
	users := keyedSessions(rc, as.URL, 0)
	ctx := context.Background()
	errs := authtest.RunParallel(8, func(w int) error {
		for i := w; i < keys; i += 8 {
			if err := users.Login(ctx, fmt.Sprintf("user-%05d", i), as.Login()); err != nil {
				return err
			}
		}
		return nil
	})
	if n, first := authtest.CountErrors(errs); n > 0 {
		tb.Fatal(first)
	}
	before := commandStats(tb, rc)
	reports := spawnMembers[keyedReport](tb, members, []string{"FLEET_MODE=keyed", "FLEET_API=" + as.URL, "FLEET_WHERE=" + r.Addr(),
		"FLEET_DURATION=" + duration.String(), "FLEET_KEYS=" + strconv.Itoa(keys), "FLEET_PAUSE=" + pause.String()}, func() {})
	after := commandStats(tb, rc)
	for k, v := range after {
		after[k] = v - before[k]
	}
	return reports, as.Auth.Counters(), after
}

// Four processes share 300 users' sessions through Redis over three
// lifetimes of 3-s tokens: every refresh is made by one process (no refresh
// token presented twice), no session ends, no call fails.
func TestKeyedFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a 9-s multi-process run")
	}
	const members, keys, ttl = 4, 300, 3 * time.Second
	reports, got, _ := keyedFleet(t, members, keys, ttl, 3*ttl, 100*time.Millisecond)
	var calls, failures, refreshes int64
	for _, r := range reports {
		calls, failures, refreshes = calls+r.Calls, failures+r.Failures, refreshes+int64(r.Refreshes)
		if r.FirstFailure != "" {
			t.Logf("a member's first failure: %s", r.FirstFailure)
		}
	}
	t.Logf("%d calls, %d failed; server: %d refreshes, %d reuse", calls, failures, got.Refreshes, got.ReuseDetections)
	if got.ReuseDetections != 0 || failures != 0 || calls == 0 || int64(got.Refreshes) != refreshes {
		t.Fatalf("reuse %d, failed calls %d; the server saw %d refreshes, the members made %d", got.ReuseDetections, failures, got.Refreshes, refreshes)
	}
	// Each key refreshed about once per refresh-ahead interval, fleet-wide:
	// at most one per 0.65 of a lifetime (the earliest jitter) over the
	// members' 3 lifetimes, plus one for the login token that aged while
	// they started; a second refresh of one token would also be a reuse.
	if per, most := float64(got.Refreshes)/keys, 3/0.65+1; per < 2 || per > most {
		t.Fatalf("%.2f refreshes per key in 3 lifetimes, want 2 to %.2f", per, most)
	}
}

// BenchmarkKeyedFleet: 8 processes × 10,000 keys shared through one Redis,
// 60-s tokens, three lifetimes, every key asked for its token about every
// second in every process. Reported: refreshes per key per lifetime
// (one process alone makes 1.33: refresh-ahead at 3/4), reuse detections,
// failed calls, refresh locks taken per refresh, and Redis commands per
// token call.
//
//	go test -run '^$' -bench KeyedFleet -benchtime 1x ./redisstore/
//
// AUTHREFRESH_FLEET_KEYS and AUTHREFRESH_FLEET_TTL change the keys and the
// lifetime.
func BenchmarkKeyedFleet(b *testing.B) {
	members, keys, ttl := 8, 10_000, time.Minute
	if v, err := strconv.Atoi(os.Getenv("AUTHREFRESH_FLEET_KEYS")); err == nil {
		keys = v
	}
	if v, err := time.ParseDuration(os.Getenv("AUTHREFRESH_FLEET_TTL")); err == nil {
		ttl = v
	}
	for range b.N {
		reports, got, cmds := keyedFleet(b, members, keys, ttl, 3*ttl, time.Second)
		var calls, failures, expired int64
		var received uint64
		for _, r := range reports {
			calls, failures, expired = calls+r.Calls, failures+r.Failures, expired+r.Expired
			received += r.Refreshes
			if r.FirstFailure != "" {
				b.Logf("a member's first failure: %s", r.FirstFailure)
			}
		}
		b.Logf("a member's counters: %+v", reports[0].Stats)
		b.Logf("Redis commands: %v", cmds)
		total := int64(0)
		for _, v := range cmds {
			total += v
		}
		b.ReportMetric(float64(got.Refreshes)/float64(keys)/3, "refreshes/key/lifetime")
		b.ReportMetric(float64(got.ReuseDetections), "reuse")
		b.ReportMetric(float64(int64(got.Refreshes)-int64(received)), "rotations-lost")
		b.ReportMetric(float64(failures), "failed-calls")
		b.ReportMetric(float64(expired), "sessions-ended")
		b.ReportMetric(float64(cmds["set"])/float64(got.Refreshes), "locks/refresh")
		b.ReportMetric(float64(total)/float64(got.Refreshes), "redis-cmds/refresh")
		b.ReportMetric(float64(total)/float64(calls), "redis-cmds/call")
		b.ReportMetric(float64(calls), "calls")
	}
}
