package redisstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/redis/go-redis/v9"
)

// seed004 is seed 004's interceptor: read the tokens from Redis before every
// request; on a 401 refresh on its own and write the result back to Redis.
type seed004 struct {
	rc         *redis.Client
	key        string
	refreshURL string
}

func (s *seed004) tokens(ctx context.Context) (access, refresh string) {
	raw, _ := s.rc.Get(ctx, s.key).Bytes()
	var t struct{ Access, Refresh string }
	_ = json.Unmarshal(raw, &t)
	return t.Access, t.Refresh
}

func (s *seed004) RoundTrip(req *http.Request) (*http.Response, error) {
	access, _ := s.tokens(req.Context())
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	resp.Body.Close()
	_, refresh := s.tokens(req.Context())
	body, _ := json.Marshal(map[string]string{"refresh_token": refresh})
	rr, err := http.Post(s.refreshURL, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer rr.Body.Close()
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if rr.StatusCode != 200 || json.NewDecoder(rr.Body).Decode(&out) != nil {
		return nil, fmt.Errorf("refresh failed: %d", rr.StatusCode)
	}
	saved, _ := json.Marshal(map[string]string{"Access": out.AccessToken, "Refresh": out.RefreshToken})
	s.rc.Set(req.Context(), s.key, saved, 0)
	r = req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+out.AccessToken)
	return http.DefaultTransport.RoundTrip(r)
}

func commandsProcessed(b *testing.B, rc *redis.Client) int64 {
	info, err := rc.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkFleet: P processes (each its own Session and Redis connection)
// share one session over four 2-s lifetimes on a fake clock, 4 requests per
// member per 250 ms step. Reports refreshes per lifetime, reuse detections,
// failed requests and Redis commands per request, for authrefresh and for
// the seed-004 baseline. Run: go test -run '^$' -bench Fleet -benchtime 1x ./redisstore/
func BenchmarkFleet(b *testing.B) {
	for _, p := range []int{1, 4, 16, 64} {
		for _, kind := range []string{"authrefresh", "seed004"} {
			b.Run(fmt.Sprintf("P=%d/%s", p, kind), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					fleetRun(b, p, kind)
				}
			})
		}
	}
}

func fleetRun(b *testing.B, members int, kind string) {
	r := startRedis(b)
	e := newEnv(b)
	admin := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer admin.Close()
	tok := e.login(b)
	clients := make([]*http.Client, members)
	sessions := make([]*authrefresh.Session, members)
	var changed []chan struct{}
	for i := range clients {
		rc := redis.NewClient(&redis.Options{Addr: r.Addr()})
		defer rc.Close()
		switch kind {
		case "authrefresh":
			ch := make(chan struct{}, 64)
			changed = append(changed, ch)
			sessions[i] = e.session(redisstore.New(rc, "bench"), func() { ch <- struct{}{} })
			clients[i] = &http.Client{Transport: &authrefresh.Transport{Session: sessions[i]}}
		default:
			clients[i] = &http.Client{Transport: &seed004{rc: rc, key: "seed004", refreshURL: e.url + "/auth/refresh"}}
		}
	}
	if kind == "authrefresh" {
		if err := sessions[0].Login(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
		<-changed[0]
	} else {
		saved, _ := json.Marshal(map[string]string{"Access": tok.AccessToken, "Refresh": tok.RefreshToken})
		admin.Set(context.Background(), "seed004", saved, 0)
	}
	const step, lifetimes = 250 * time.Millisecond, 4
	var failures, requests int64
	var mu sync.Mutex
	steadyCmds, steadyReqs := int64(0), int64(0)
	for elapsed := time.Duration(0); elapsed < lifetimes*2*time.Second; elapsed += step {
		before := make([]uint64, members)
		for i, s := range sessions {
			if s != nil {
				before[i] = s.Stats().RefreshAheadStarts
			}
		}
		activity := func() uint64 { // anything but the fast path, fleet-wide
			n := e.server.Counters().Refreshes
			for _, s := range sessions {
				if s != nil {
					st := s.Stats()
					n += st.Refreshes + st.Adopted + st.Waits + st.LockWaits + st.RefreshAheadStarts
				}
			}
			return n
		}
		a0 := activity()
		c0 := commandsProcessed(b, admin)
		var wg sync.WaitGroup
		for i := range clients {
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := clients[i].Get(e.url + "/api/v1/me")
					ok := err == nil && resp.StatusCode == 200
					if resp != nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					mu.Lock()
					requests++
					if !ok {
						failures++
					}
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
		c1 := commandsProcessed(b, admin)
		if activity() == a0 { // a steady-state step: no refresh, adoption or wait anywhere
			steadyCmds += c1 - c0 - 1 // minus our own INFO
			steadyReqs += int64(members * 4)
		}
		for i, s := range sessions {
			if s != nil {
				for n := s.Stats().RefreshAheadStarts; before[i] < n; before[i]++ {
					<-changed[i]
				}
			}
		}
		e.clock.Advance(step)
	}
	got := e.server.Counters()
	b.ReportMetric(float64(got.Refreshes)/lifetimes, "refreshes/lifetime")
	b.ReportMetric(float64(got.Refreshes+got.RefreshFailures)/lifetimes, "refresh-calls/lifetime")
	b.ReportMetric(float64(got.ReuseDetections), "reuse-detections")
	b.ReportMetric(float64(failures), "failed-requests")
	b.ReportMetric(float64(requests), "requests")
	if steadyReqs > 0 {
		b.ReportMetric(float64(steadyCmds)/float64(steadyReqs), "redis-cmds/req")
	}
}

// BenchmarkRefreshWait: what a refresh costs the requests that have to wait
// for it (an expired token, no refresh-ahead possible): 8 members × 4
// requests, through Redis vs one in-memory Session with the same 32 requests.
func BenchmarkRefreshWait(b *testing.B) {
	for _, kind := range []string{"memory-1-session", "redis-8-members"} {
		b.Run(kind, func(b *testing.B) {
			r := startRedis(b)
			e := newEnv(b)
			var waits uint64
			var waited time.Duration
			for i := 0; i < b.N; i++ {
				members := 8
				var stores []authrefresh.Store
				if kind == "memory-1-session" {
					members = 1
					stores = []authrefresh.Store{authrefresh.NewMemoryStore(nil)}
				} else {
					for m := 0; m < members; m++ {
						stores = append(stores, redisstore.New(r.Client(b), fmt.Sprintf("wait-%d", i)))
					}
				}
				sessions := make([]*authrefresh.Session, members)
				for m := range sessions {
					sessions[m] = e.session(stores[m], func() {})
				}
				tok := e.login(b)
				tok.Expiry = e.clock.Now().Add(-time.Second) // expired: everyone waits for the refresh
				if err := sessions[0].Login(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				per := 32 / members
				for _, s := range sessions {
					for g := 0; g < per; g++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if _, err := s.Token(context.Background()); err != nil {
								b.Error(err)
							}
						}()
					}
				}
				wg.Wait()
				for _, s := range sessions {
					st := s.Stats()
					waits += st.Waits
					waited += st.WaitTime
				}
			}
			if waits > 0 {
				b.ReportMetric(float64(waited.Microseconds())/float64(waits), "µs-wait/waiting-call")
			}
		})
	}
}
