package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/naive"
	"github.com/authrefresh/authrefresh/jsonauth"
)

// demoConfig are the demo's knobs.
type demoConfig struct {
	workers        int
	duration       time.Duration
	ttl            time.Duration
	refreshLatency time.Duration
	compareNaive   bool
	chaos          bool
}

// demoChaos are the faults of `demo --chaos`, the rates of the chaos test.
var demoChaos = authserver.Chaos{
	RefreshLatencyMax: 100 * time.Millisecond,
	RefreshFailRate:   0.10,
	RefreshDropRate:   0.05,
	RefreshLostRate:   0.05,
	APICutRate:        0.01,
	RevokeRate:        0.0002,
}

// demoReport is what one run measured, client side and server side.
type demoReport struct {
	name             string
	duration         time.Duration
	requests         int64
	failures         int64 // unexpected: anything but the deliberate 400s (and, under chaos, typed transient failures)
	firstFailure     string
	chaosFailures    map[string]int64 // under chaos: expected failures by class
	faults           authserver.FaultCounts
	createdButCut    int64 // products created whose answer chaos cut: the client reported a failure
	rejected400      int64 // deliberately invalid products refused as expected
	created          int64
	server401s       uint64
	serverRefreshes  uint64
	refreshCalls     int64 // refresh requests the client sent, successful or not
	reuseDetections  uint64
	lifetimes        float64
	waits            uint64
	waitTotal        time.Duration
	waitMax          time.Duration
	p50, p95, p99    time.Duration
	verified         bool
	verifyProblem    string
	loggedOutWorkers int64
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "Start the reference server in-process with short-lived tokens, run many concurrent\nworkers through ONE authrefresh Session across several token lifetimes, and report:\nrequests, failures, 401s, refreshes vs lifetimes, waits, latency, and a server-side\ncheck that every product created exists exactly once.", `  authrefresh demo
  authrefresh demo --workers 64 --duration 20s --ttl 1s
  authrefresh demo --compare-naive      # the same load through a hand-written axios-style interceptor
  authrefresh demo --chaos              # random faults: nothing may be lost or duplicated
`, stderr)
	cfg := demoConfig{}
	fs.IntVar(&cfg.workers, "workers", 32, "concurrent workers sharing one Session")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to run")
	fs.DurationVar(&cfg.ttl, "ttl", 2*time.Second, "access token lifetime")
	fs.DurationVar(&cfg.refreshLatency, "refresh-latency", 20*time.Millisecond, "server-side delay of each refresh (a realistic auth server)")
	fs.BoolVar(&cfg.compareNaive, "compare-naive", false, "rerun the load through a hand-written axios-style interceptor (token in a variable, refresh on each 401) and print both")
	fs.BoolVar(&cfg.chaos, "chaos", false, "inject random faults (refresh latency, 503s, dropped and lost refresh answers, API answers cut\nmid-body, random revocations); typed failures are expected, lost or duplicated products are not")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.workers < 1 || cfg.workers > 10000 || cfg.duration <= 0 || cfg.duration > time.Hour || cfg.ttl < time.Second {
		return usageError{"want 1..10000 workers, a duration up to 1h, and a ttl of at least 1s"}
	}
	tty := isTerminal(stdout)
	ours, err := demoRun(ctx, cfg, false, stdout, tty)
	if err != nil {
		return err
	}
	reports := []*demoReport{ours}
	if cfg.compareNaive {
		theirs, err := demoRun(ctx, cfg, true, stdout, tty)
		if err != nil {
			return err
		}
		reports = append(reports, theirs)
	}
	printReports(stdout, cfg, reports)
	if ours.failures > 0 || !ours.verified {
		return fmt.Errorf("demo: %d requests failed unexpectedly; verification: %s", ours.failures, firstNonEmpty(ours.verifyProblem, "ok"))
	}
	return nil
}

// demoRun runs one load against a fresh in-process server.
func demoRun(ctx context.Context, cfg demoConfig, useNaive bool, progressOut io.Writer, tty bool) (*demoReport, error) {
	srvCfg := authserver.Config{AccessTTL: cfg.ttl, PasswordCost: 4}
	if cfg.chaos {
		srvCfg.GracePeriod = 10 * time.Second // lost refresh answers are survivable only with one
	}
	srv, err := authserver.New(srvCfg)
	if err != nil {
		return nil, err
	}
	srv.SetRefreshLatency(cfg.refreshLatency)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveUntilDone(serveCtx, ln, srv) }()
	defer func() { stopServe(); <-served }()
	base := "http://" + ln.Addr().String()

	transport := &http.Transport{MaxIdleConnsPerHost: cfg.workers + 8, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	tok, err := jsonauth.Login(ctx, &http.Client{Transport: transport}, base+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		return nil, fmt.Errorf("demo login: %w", err)
	}
	refresher := &jsonauth.Refresher{URL: base + "/auth/refresh", HTTPClient: &http.Client{Transport: transport, Timeout: 10 * time.Second}}
	session := authrefresh.NewSession(nil, refresher, authrefresh.Options{})
	if err := session.Login(ctx, tok); err != nil {
		return nil, err
	}
	client, err := authrefresh.NewClient(base+"/api/v1/", session)
	if err != nil {
		return nil, err
	}
	name := "authrefresh"
	if useNaive {
		name = "hand-written interceptor"
		n := &naive.Interceptor{RefreshURL: base + "/auth/refresh", Base: transport}
		n.SetTokens(tok.AccessToken, tok.RefreshToken)
		client.HTTPClient = &http.Client{Transport: n, Timeout: authrefresh.DefaultClientTimeout}
	} else {
		client.HTTPClient.Transport.(*authrefresh.Transport).Base = transport
	}

	if cfg.chaos {
		srv.SetChaos(demoChaos)
	}

	r := &demoReport{name: name, chaosFailures: map[string]int64{}}
	created := make([]map[string]float64, cfg.workers)
	unsure := make([]map[string]bool, cfg.workers) // POSTs that failed: created or not
	latencies := make([][]time.Duration, cfg.workers)
	var requests, failures, refused, loggedOut atomic.Int64
	var failMu sync.Mutex
	// Workers stop starting requests at the deadline but finish the one in
	// flight: cancelling it could drop the answer of a product the server
	// created, and the verification below would rightly call that a loss.
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for w := 0; w < cfg.workers; w++ {
		created[w], unsure[w] = map[string]float64{}, map[string]bool{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for seq := 0; time.Now().Before(deadline) && ctx.Err() == nil; seq++ {
				began := time.Now()
				err := demoRequest(ctx, client, rng, w, seq, created[w], unsure[w])
				if ctx.Err() != nil {
					return // interrupted by the user
				}
				latencies[w] = append(latencies[w], time.Since(began))
				requests.Add(1)
				var apiErr *authrefresh.APIError
				switch {
				case err == nil:
				case errors.Is(err, errExpected400):
					refused.Add(1)
				case cfg.chaos && chaosFailureClass(err) != "":
					failMu.Lock()
					r.chaosFailures[chaosFailureClass(err)]++
					failMu.Unlock()
				default:
					if failures.Add(1) == 1 {
						failMu.Lock()
						r.firstFailure = err.Error()
						failMu.Unlock()
					}
					if errors.Is(err, naive.ErrLoggedOut) || errors.Is(err, authrefresh.ErrSessionExpired) || (errors.As(err, &apiErr) && apiErr.StatusCode == 401 && !cfg.chaos) {
						loggedOut.Add(1)
						return // the app would send the user to the login page
					}
				}
			}
		}()
	}
	progress(runCtx, progressOut, tty, name, cfg.duration, start, &requests, &failures, srv)
	wg.Wait()
	r.duration = time.Since(start)

	srv.SetChaos(authserver.Chaos{})
	counters := srv.Counters()
	r.faults = counters.Faults
	r.requests, r.failures, r.rejected400, r.loggedOutWorkers = requests.Load(), failures.Load(), refused.Load(), loggedOut.Load()
	r.server401s = counters.Unauthorized401s()
	r.serverRefreshes = counters.Refreshes
	r.reuseDetections = counters.ReuseDetections
	r.lifetimes = float64(r.duration) / float64(cfg.ttl)
	st := session.Stats()
	if useNaive {
		r.refreshCalls = client.HTTPClient.Transport.(*naive.Interceptor).Refreshes.Load()
	} else {
		r.waits, r.waitTotal, r.waitMax = st.Waits, st.WaitTime, st.MaxWait
		r.refreshCalls = int64(st.Refreshes + st.TransientFailures + st.Rejections)
	}
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	r.p50, r.p95, r.p99 = percentile(all, 0.50), percentile(all, 0.95), percentile(all, 0.99)
	r.created, r.createdButCut, r.verified, r.verifyProblem = verifyProducts(created, unsure, srv.Products(), counters.Faults.APICut)
	return r, nil
}

var errExpected400 = errors.New("expected 400")

// demoRequest is one step of a worker: mostly reads, some unique writes, and
// a few deliberately invalid products that must be refused with details.
func demoRequest(ctx context.Context, c *authrefresh.Client, rng *rand.Rand, worker, seq int, created map[string]float64, unsure map[string]bool) error {
	switch p := rng.IntN(100); {
	case p < 2:
		err := c.Post(ctx, "data", map[string]any{"name": "", "price": -1}, nil)
		var apiErr *authrefresh.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode == 400 && apiErr.Details["price"] != nil && apiErr.Details["name"] != nil {
			return errExpected400
		}
		if err == nil {
			return errors.New("an invalid product was accepted")
		}
		return err
	case p < 30:
		name := fmt.Sprintf("w%03d-%06d", worker, seq)
		price := float64(1+rng.IntN(99999)) / 100
		var out authserver.Product
		if err := c.Post(ctx, "data", map[string]any{"name": name, "price": price, "description": "demo"}, &out); err != nil {
			unsure[name] = true
			return err
		}
		if out.Name != name || out.Price != price {
			return fmt.Errorf("server echoed %q %.2f for %q %.2f", out.Name, out.Price, name, price)
		}
		created[name] = price
		return nil
	default:
		var out struct {
			Total int `json:"total"`
		}
		return c.Get(ctx, "data?limit=5", &out)
	}
}

// verifyProducts checks that every product a worker saw created exists
// exactly once on the server with the same price, and nothing else does —
// except products whose POST failed after the server created them (their
// answer was cut), of which there can be at most cut. It returns the number
// created, the number created but reported failed, and whether all is well.
func verifyProducts(created []map[string]float64, unsure []map[string]bool, server []authserver.Product, cut uint64) (int64, int64, bool, string) {
	want := map[string]float64{}
	maybe := map[string]bool{}
	for i, m := range created {
		for k, v := range m {
			want[k] = v
		}
		for k := range unsure[i] {
			maybe[k] = true
		}
	}
	seen := map[string]int{}
	var createdButCut int64
	for _, p := range server {
		seen[p.Name]++
		price, ok := want[p.Name]
		switch {
		case !ok && maybe[p.Name] && seen[p.Name] == 1:
			createdButCut++
		case !ok:
			return int64(len(want)), createdButCut, false, fmt.Sprintf("server has %q, which no worker saw created (a lost answer or a duplicate)", p.Name)
		case price != p.Price:
			return int64(len(want)), createdButCut, false, fmt.Sprintf("%q stored with price %.2f, sent %.2f", p.Name, p.Price, price)
		}
	}
	for name := range want {
		if seen[name] != 1 {
			return int64(len(want)), createdButCut, false, fmt.Sprintf("%q stored %d times", name, seen[name])
		}
	}
	if uint64(createdButCut) > cut {
		return int64(len(want)), createdButCut, false, fmt.Sprintf("%d failed POSTs created their product, but only %d answers were cut", createdButCut, cut)
	}
	return int64(len(want)), createdButCut, true, ""
}

// chaosFailureClass names a failure that random faults explain — a refresh
// that failed transiently, a network error, a refusal the Session would not
// loop on — or "" for one they do not (a logout, an unexplained error).
func chaosFailureClass(err error) string {
	var refused *authrefresh.NotReplayedError
	var apiErr *authrefresh.APIError
	var opErr *net.OpError // not net.Error: every *url.Error is one, whatever it wraps
	switch {
	case errors.Is(err, authrefresh.ErrSessionExpired), errors.Is(err, authrefresh.ErrNotLoggedIn), errors.Is(err, naive.ErrLoggedOut):
		return ""
	case errors.Is(err, authrefresh.ErrRefreshTransient):
		return "refresh unavailable"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &opErr):
		return "connection lost"
	case errors.As(err, &refused), errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized:
		return "refused twice" // the replay's token was revoked too: replayed once, as promised
	}
	return ""
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// progress shows a live bar on a terminal; into a file or a pipe, a plain
// line every 5 seconds.
func progress(ctx context.Context, w io.Writer, tty bool, name string, total time.Duration, start time.Time, requests, failures *atomic.Int64, srv *authserver.Server) {
	every := 5 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	line := func() string {
		el := time.Since(start)
		frac := min(1, float64(el)/float64(total))
		bar := ""
		if tty {
			bar = strings.Repeat("█", int(frac*24)) + strings.Repeat("░", 24-int(frac*24)) + " "
		}
		return fmt.Sprintf("%-22s %s%4.1fs/%s  %6.0f req/s  refreshes %d  errors %d",
			name, bar, el.Seconds(), total, float64(requests.Load())/max(el.Seconds(), 0.001), srv.Counters().Refreshes, failures.Load())
	}
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintf(w, "\r%s\n", line())
			}
			return
		case <-t.C:
			if tty {
				fmt.Fprintf(w, "\r%s", line())
			} else {
				fmt.Fprintln(w, line())
			}
		}
	}
}

func printReports(w io.Writer, cfg demoConfig, reports []*demoReport) {
	faults := ""
	if cfg.chaos {
		faults = ", with random faults"
	}
	fmt.Fprintf(w, "\n%d workers, %s, access tokens live %s, refresh takes %s server-side%s\n\n", cfg.workers, cfg.duration, cfg.ttl, cfg.refreshLatency, faults)
	row := func(label string, f func(r *demoReport) string) {
		fmt.Fprintf(w, "  %-38s", label)
		for _, r := range reports {
			fmt.Fprintf(w, "%-32s", f(r))
		}
		fmt.Fprintln(w)
	}
	row("", func(r *demoReport) string { return r.name })
	row("requests", func(r *demoReport) string {
		return fmt.Sprintf("%d (%.0f/s)", r.requests, float64(r.requests)/r.duration.Seconds())
	})
	row("failed unexpectedly", func(r *demoReport) string { return fmt.Sprint(r.failures) })
	if cfg.chaos {
		row("faults injected", func(r *demoReport) string {
			f := r.faults
			return fmt.Sprintf("%d (refresh 503 %d, dropped %d, lost %d; API cut %d; revoked %d)", f.Total()-f.RefreshDelayed, f.Refresh503, f.RefreshDropped, f.RefreshLost, f.APICut, f.AccessRevoked)
		})
		row("failed because of a fault (typed)", func(r *demoReport) string {
			var parts []string
			for _, class := range []string{"refresh unavailable", "connection lost", "refused twice"} {
				if n := r.chaosFailures[class]; n > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", class, n))
				}
			}
			return firstNonEmpty(strings.Join(parts, ", "), "0")
		})
		row("created, but the answer was cut", func(r *demoReport) string { return fmt.Sprint(r.createdButCut) })
	}
	row("invalid products refused (400)", func(r *demoReport) string { return fmt.Sprint(r.rejected400) })
	row("401s seen by the server", func(r *demoReport) string { return fmt.Sprint(r.server401s) })
	row("refreshes sent / succeeded", func(r *demoReport) string {
		return fmt.Sprintf("%d / %d", r.refreshCalls, r.serverRefreshes)
	})
	row("token lifetimes elapsed", func(r *demoReport) string { return fmt.Sprintf("%.1f", r.lifetimes) })
	row("reuse detections (forced logouts)", func(r *demoReport) string { return fmt.Sprint(r.reuseDetections) })
	row("workers logged out", func(r *demoReport) string { return fmt.Sprint(r.loggedOutWorkers) })
	row("requests that waited on a refresh", func(r *demoReport) string {
		if r.name != "authrefresh" {
			return "n/a"
		}
		avg := time.Duration(0)
		if r.waits > 0 {
			avg = r.waitTotal / time.Duration(r.waits)
		}
		return fmt.Sprintf("%d (avg %s, max %s)", r.waits, avg.Round(time.Microsecond), r.waitMax.Round(time.Microsecond))
	})
	row("latency p50 / p95 / p99", func(r *demoReport) string {
		return fmt.Sprintf("%s / %s / %s", r.p50.Round(time.Microsecond), r.p95.Round(time.Microsecond), r.p99.Round(time.Microsecond))
	})
	row("products created, verified on server", func(r *demoReport) string {
		if r.verified {
			return fmt.Sprintf("%d, all exactly once", r.created)
		}
		return fmt.Sprintf("%d, MISMATCH", r.created)
	})
	for _, r := range reports {
		if r.firstFailure != "" {
			fmt.Fprintf(w, "\n  %s, first failure: %s", r.name, r.firstFailure)
		}
		if r.verifyProblem != "" {
			fmt.Fprintf(w, "\n  %s, verification: %s", r.name, r.verifyProblem)
		}
	}
	fmt.Fprintln(w)
	if len(reports) == 1 && !cfg.chaos {
		fmt.Fprintln(w, "\n(refresh-ahead renews at 3/4 of each lifetime, so expect about lifetimes × 4/3 refreshes and no waits)")
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
