package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// The demo's report agrees with the server's own counters and proves nothing
// was lost: every product exactly once, no failures, no 401s, no reuse, and
// refreshes at the refresh-ahead rate.
func TestDemoReportMatchesServer(t *testing.T) {
	cfg := demoConfig{workers: 8, duration: 3 * time.Second, ttl: time.Second, refreshLatency: 10 * time.Millisecond}
	r, err := demoRun(context.Background(), cfg, false, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.failures != 0 || !r.verified || r.created == 0 || r.requests == 0 {
		t.Fatalf("failures=%d verified=%v (%s) created=%d: %s", r.failures, r.verified, r.verifyProblem, r.created, r.firstFailure)
	}
	if r.server401s != 0 || r.reuseDetections != 0 || r.refreshCalls != int64(r.serverRefreshes) {
		t.Fatalf("401s=%d reuse=%d, want 0; refreshes: server %d, client %d", r.server401s, r.reuseDetections, r.serverRefreshes, r.refreshCalls)
	}
	// With 1-s tokens, refresh-ahead has 250 ms to finish before anyone
	// waits: true on a machine doing only this, not beside other packages.
	want := r.duration.Seconds() / 0.75 // one refresh per 3/4 lifetime
	t.Logf("waits=%d, refreshes %d (≈ %.1f expected)", r.waits, r.serverRefreshes, want)
	if authtest.TimingClaims(t) && (r.waits != 0 || math.Abs(float64(r.serverRefreshes)-want) > 1.5) {
		t.Fatalf("waits=%d, want 0; refreshes %d, want ≈ %.1f", r.waits, r.serverRefreshes, want)
	}
}

// demo --chaos: faults are injected and cause only typed failures; nothing
// is lost or duplicated, nobody is logged out.
func TestDemoChaosLosesNothing(t *testing.T) {
	cfg := demoConfig{workers: 8, duration: 2 * time.Second, ttl: time.Second, refreshLatency: 10 * time.Millisecond, chaos: true}
	r, err := demoRun(context.Background(), cfg, false, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.failures != 0 || !r.verified || r.created == 0 || r.reuseDetections != 0 || r.loggedOutWorkers != 0 {
		t.Fatalf("failures=%d (%s) verified=%v (%s) created=%d reuse=%d logged out=%d", r.failures, r.firstFailure, r.verified, r.verifyProblem, r.created, r.reuseDetections, r.loggedOutWorkers)
	}
	if r.faults.Total() == 0 {
		t.Fatal("no fault was injected; the run proves nothing")
	}
}

// The verification accepts a failed POST's product only as many times as
// answers were cut, and never twice.
func TestVerifyProductsUnderChaos(t *testing.T) {
	created := []map[string]float64{{"a": 1}}
	unsure := []map[string]bool{{"b": true}}
	server := []authserver.Product{{Name: "a", Price: 1}, {Name: "b", Price: 2}}
	if _, cut, ok, why := verifyProducts(created, unsure, server, 1); !ok || cut != 1 {
		t.Fatalf("one cut answer: ok=%v cut=%d %s", ok, cut, why)
	}
	if _, _, ok, _ := verifyProducts(created, unsure, server, 0); ok {
		t.Fatal("a failed POST created its product without a cut answer, and that passed")
	}
	if _, _, ok, _ := verifyProducts(created, unsure, append(server, authserver.Product{Name: "b", Price: 2}), 5); ok {
		t.Fatal("a duplicate passed")
	}
	if _, _, ok, _ := verifyProducts(created, []map[string]bool{{}}, server, 5); ok {
		t.Fatal("a product nobody sent passed")
	}
}

// The seed-style interceptor, under the same load, trips reuse detection:
// the comparison the demo prints is real.
func TestDemoNaiveTripsReuseDetection(t *testing.T) {
	cfg := demoConfig{workers: 16, duration: 2500 * time.Millisecond, ttl: time.Second, refreshLatency: 10 * time.Millisecond}
	r, err := demoRun(context.Background(), cfg, true, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.refreshCalls <= int64(r.serverRefreshes) || r.reuseDetections == 0 || r.failures == 0 {
		t.Fatalf("naive run: calls=%d refreshes=%d reuse=%d failures=%d; expected a refresh stampede", r.refreshCalls, r.serverRefreshes, r.reuseDetections, r.failures)
	}
}

func TestDemoCommandExitCodeAndReport(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--workers", "4", "--duration", "1500ms", "--ttl", "1s"}, nil, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"failed unexpectedly", "all exactly once", "p50 / p95 / p99"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.ContainsAny(out.String(), "█░\r") {
		t.Fatalf("progress bars written into a pipe:\n%s", out.String())
	}
}
