package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/redistest"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/redis/go-redis/v9"
)

// spawnFleet runs members OS processes of this test binary as fleet members
// (runFleetMember) against api, on the store kind at where, for duration, and
// calls faults while they run; it returns their reports.
func spawnFleet(t *testing.T, api, kind, where string, members int, duration time.Duration, extraEnv []string, faults func()) []fleetReport {
	t.Helper()
	env := append([]string{"FLEET_API=" + api, "FLEET_STORE=" + kind, "FLEET_WHERE=" + where, "FLEET_DURATION=" + duration.String()}, extraEnv...)
	return spawnMembers[fleetReport](t, members, env, faults)
}

// spawnMembers runs members OS processes of this test binary as fleet
// members (see runFleetMember) with env, calls during while they run, and
// decodes the report each prints.
func spawnMembers[R any](tb testing.TB, members int, env []string, during func()) []R {
	tb.Helper()
	reports := make([]R, members)
	var wg sync.WaitGroup
	for i := 0; i < members; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(append(os.Environ(), fleetChildEnv+"=1"), env...)
			if os.Getenv("FLEET_DEBUG") == "1" && i == 0 {
				cmd.Stderr = os.Stderr
			}
			out, err := cmd.Output()
			if err != nil {
				tb.Errorf("member %d: %v", i, err)
				return
			}
			if err := json.Unmarshal(out, &reports[i]); err != nil {
				tb.Errorf("member %d: %v: %s", i, err, out)
			}
		}()
	}
	during()
	wg.Wait()
	return reports
}

// checkFleet asserts what infrastructure faults must never cost: a refresh
// token presented twice, a session ended, an error that is not typed.
func checkFleet(t *testing.T, name string, srv *authserver.Server, duration time.Duration, reports []fleetReport) {
	t.Helper()
	var requests, failures, expired, stalled, untyped int64
	first := ""
	for _, r := range reports {
		requests, failures, expired, untyped = requests+r.Requests, failures+r.Failures, expired+r.Expired, untyped+r.Untyped
		stalled += r.Stalled
		if first == "" {
			first = r.FirstFailure
		}
	}
	got := srv.Counters()
	t.Logf("%s: %d processes, %d requests, %d failed (all transient: %v), %d refreshes, %d reuse detections, %d sessions ended; first failure: %s",
		name, len(reports), requests, failures, untyped == 0, got.Refreshes, got.ReuseDetections, expired, first)
	if got.ReuseDetections != 0 || expired != 0 || untyped != 0 || stalled != 0 || requests == 0 {
		t.Fatalf("%s: reuse %d, ended %d, stalled to their deadline %d, untyped failures %d", name, got.ReuseDetections, expired, stalled, untyped)
	}
	// The fleet kept refreshing through the faults: about one refresh per
	// 1.5 s (refresh-ahead at 3/4 of 2-s tokens), never a long stall.
	if low := duration.Seconds()/2 - 2; float64(got.Refreshes) < low {
		t.Fatalf("%s: %d refreshes in %v, want at least %.0f", name, got.Refreshes, duration, low)
	}
}

// loginShared logs the demo user in to the shared session through store.
func loginShared(t *testing.T, as *authtest.Server, store authrefresh.Store) {
	t.Helper()
	if err := authrefresh.NewSession(store, nil, authrefresh.Options{}).Login(context.Background(), as.Login()); err != nil {
		t.Fatal(err)
	}
}

// Sentinel: a master, two replicas and three sentinels; four processes share
// one session over 2-s tokens while the master is failed over twice by the
// sentinels and then killed with SIGKILL (and restarted, to rejoin as a
// replica). With WaitReplicas 1 (a lock or a token that no replica has is not
// trusted), nobody presents a used refresh token and no session ends;
// requests during the outage fail as transient.
func TestSentinelFailovers(t *testing.T) {
	if testing.Short() {
		t.Skip("real sentinels and processes, ~20 s")
	}
	master, replica := startReplicated(t)
	replica2 := redistest.StartWith(t, "--replicaof", "127.0.0.1", master.Port())
	sentinels := redistest.Sentinels(t, master, 3)
	as := authtest.StartRealClock(t, authserver.Config{AccessTTL: 2 * time.Second})
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: sentinels})
	defer fc.Close()
	store := redisstore.New(fc, "fleet-processes")
	store.WaitReplicas = 1
	loginShared(t, as, store)
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer sc.Close()
	servers := map[string]*redistest.Server{master.Port(): master, replica.Port(): replica, replica2.Port(): replica2}
	currentMaster := func() *redistest.Server {
		addr, err := sc.GetMasterAddrByName(context.Background(), "mymaster").Result()
		if err != nil {
			t.Errorf("sentinel: %v", err)
			return master
		}
		return servers[addr[1]]
	}
	reports := spawnFleet(t, as.URL, "sentinel", strings.Join(sentinels, ","), 4, 18*time.Second, []string{"FLEET_WAIT=1"}, func() {
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			// The scenario's pacing: traffic across token lifetimes between
			// faults (a sentinel refuses a second failover of one master
			// within twice its failover-timeout, 2 s here).
			time.Sleep(4 * time.Second)
			before := currentMaster()
			if err := sc.Failover(ctx, "mymaster").Err(); err != nil {
				t.Errorf("SENTINEL FAILOVER: %v", err)
			}
			for j := 0; j < 100 && currentMaster() == before; j++ {
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("failover %d: master %s → %s", i+1, before.Port(), currentMaster().Port())
		}
		time.Sleep(3 * time.Second)
		victim := currentMaster()
		victim.Stop() // SIGKILL
		t.Logf("killed master %s", victim.Port())
		time.Sleep(3 * time.Second) // the outage the sentinels must notice (down-after 1 s)
		victim.Start()              // back, to be reconfigured as a replica
	})
	checkFleet(t, "sentinel failovers", as.Auth, 18*time.Second, reports)
}

// Redis restarted from an older snapshot: the processes hold newer tokens
// than the store, refresh with those and write them back; nobody presents a
// used refresh token.
func TestRestartFromOlderSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, ~10 s")
	}
	dir := t.TempDir()
	r := redistest.StartWith(t, "--dir", dir, "--dbfilename", "dump.rdb")
	as := authtest.StartRealClock(t, authserver.Config{AccessTTL: 2 * time.Second})
	rc := r.Client(t)
	loginShared(t, as, redisstore.New(rc, "fleet-processes"))
	reports := spawnFleet(t, as.URL, "redis", r.Addr(), 4, 10*time.Second, nil, func() {
		if err := rc.Save(context.Background()).Err(); err != nil { // the snapshot, at the first token
			t.Errorf("SAVE: %v", err)
		}
		time.Sleep(5 * time.Second) // two token lifetimes: the snapshot's token is rotated away
		r.Stop()                    // a crash…
		r.Start()                   // …and a restart from the 5-s-old snapshot
	})
	checkFleet(t, "restart from an older snapshot", as.Auth, 10*time.Second, reports)
}

// migrateSlot moves slot from one master to another the way
// redis-cli --cluster reshard does (IMPORTING, MIGRATING, MIGRATE each key,
// then the new owner announced to every node), pausing between the steps so
// that refreshes run while the slot is half-moved (ASK redirections; a script
// spanning keys in two places would get TRYAGAIN).
func migrateSlot(t *testing.T, nodes []*redistest.Server, slot int, from, to *redistest.Server, pause time.Duration) {
	ctx := context.Background()
	fc := redis.NewClient(&redis.Options{Addr: from.Addr()})
	defer fc.Close()
	tc := redis.NewClient(&redis.Options{Addr: to.Addr()})
	defer tc.Close()
	fromID, toID := from.NodeID(t), to.NodeID(t)
	must := func(err error) bool {
		if err != nil {
			t.Errorf("migrating slot %d from %s to %s: %v", slot, from.Port(), to.Port(), err)
		}
		return err == nil
	}
	if !must(tc.Do(ctx, "cluster", "setslot", slot, "importing", fromID).Err()) ||
		!must(fc.Do(ctx, "cluster", "setslot", slot, "migrating", toID).Err()) {
		return
	}
	time.Sleep(pause)   // half-moved: nothing migrated yet
	for i := 0; ; i++ { // until no key is left (new ones are created on the target)
		keys, err := fc.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if !must(err) || len(keys) == 0 {
			break
		}
		for _, k := range keys {
			if err := fc.Migrate(ctx, "127.0.0.1", to.Port(), k, 0, 5*time.Second).Err(); err != nil && !strings.Contains(err.Error(), "NOKEY") {
				must(err)
			}
			time.Sleep(pause) // half-moved: some keys here, some there
		}
		if i == 10 {
			t.Errorf("slot %d: keys keep appearing on the source", slot)
			return
		}
	}
	for _, n := range append([]*redistest.Server{to, from}, nodes...) { // the new owner first
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		must(c.Do(ctx, "cluster", "setslot", slot, "node", toID).Err())
		c.Close()
	}
}

// slotOwner asks a node which master owns slot.
func slotOwner(t *testing.T, nodes []*redistest.Server, slot int) *redistest.Server {
	c := redis.NewClient(&redis.Options{Addr: nodes[0].Addr()})
	defer c.Close()
	shards, err := c.ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= int64(slot) && int64(slot) <= r.End {
				for _, sn := range sh.Nodes {
					if sn.Role != "master" {
						continue
					}
					for _, n := range nodes {
						if n.Port() == fmt.Sprint(sn.Port) {
							return n
						}
					}
				}
			}
		}
	}
	t.Fatalf("no node owns slot %d", slot)
	return nil
}

// Cluster: three masters; four processes share one session over 2-s tokens
// while its slot is migrated between masters again and again, mid-refresh.
// The scripts touch one key each, the client follows MOVED and ASK, a failed
// release is retried: no lock is left to stall the others, nobody presents a
// used refresh token, no session ends.
func TestClusterSlotMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("a real cluster and processes, ~15 s")
	}
	nodes := redistest.Cluster(t, 3)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	ctx := context.Background()
	slot, err := cc.ClusterKeySlot(ctx, "authrefresh:{fleet-processes}:token").Result()
	if err != nil {
		t.Fatal(err)
	}
	as := authtest.StartRealClock(t, authserver.Config{AccessTTL: 2 * time.Second})
	loginShared(t, as, redisstore.New(cc, "fleet-processes"))
	moves := 0
	reports := spawnFleet(t, as.URL, "cluster", strings.Join(addrs, ","), 4, 12*time.Second, nil, func() {
		deadline := time.Now().Add(11 * time.Second)
		from := slotOwner(t, nodes, int(slot))
		for i := 0; time.Now().Before(deadline); i++ {
			to := nodes[(i+1)%len(nodes)]
			if to == from {
				to = nodes[(i+2)%len(nodes)]
			}
			migrateSlot(t, nodes, int(slot), from, to, 300*time.Millisecond)
			from = to
			moves++
		}
	})
	t.Logf("slot %d moved %d times", slot, moves)
	checkFleet(t, "cluster slot migration", as.Auth, 12*time.Second, reports)
}
