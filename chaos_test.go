package authrefresh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/oauth"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
)

// chaosDuration is how long TestChaos runs: 20 s, 3 s with -short, or
// AUTHREFRESH_CHAOS (a Go duration) for the long runs in RELIABILITY.md.
func chaosDuration(t *testing.T) time.Duration {
	if v := os.Getenv("AUTHREFRESH_CHAOS"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("AUTHREFRESH_CHAOS=%q: %v", v, err)
		}
		return d
	}
	if testing.Short() {
		return 3 * time.Second
	}
	return 20 * time.Second
}

// chaosOutcome is what one worker's request reported.
type chaosOutcome struct {
	name    string
	price   float64
	created *authserver.Product // the server's answer, when the client reported success
	err     error
}

// TestChaos: many goroutines POST unique products through one Session while
// the reference server injects random faults — refresh latency, 503s, dropped
// and lost refresh answers, API answers cut mid-body, random revocation of
// every access token. Afterwards the server's own records are the judge:
// every product reported created exists exactly once with its payload, none
// exists twice, every failure is of a known class, nothing was logged out,
// no token reached the log, and no goroutine or memory was left behind.
func TestChaos(t *testing.T) { runChaos(t, false) }

// TestChaosDPoP is TestChaos with DPoP-bound tokens (a public client's
// refresh token bound too, nonces required at the token endpoint and the
// API), for half as long: on top of its checks, the server saw no proof
// twice, no refused proof and no refresh token with another key.
func TestChaosDPoP(t *testing.T) { runChaos(t, true) }

func runChaos(t *testing.T, dpop bool) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	duration := chaosDuration(t)
	if dpop {
		duration = max(duration/2, 3*time.Second)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("AUTHREFRESH_CHAOS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (AUTHREFRESH_CHAOS_SEED=%d reproduces the faults' dice, not the goroutines' timing)", seed, seed)

	srv, err := authserver.New(authserver.Config{
		AccessTTL:    time.Second,
		GracePeriod:  10 * time.Second, // lost refresh answers are only survivable with one
		PasswordCost: bcrypt.MinCost,
		DPoPNonce:    dpop,
		Clients:      map[string]string{"cli": ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	transport := &http.Transport{MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}

	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var tokensMu sync.Mutex
	var secrets []string
	var refresher authrefresh.Refresher = &jsonauth.Refresher{URL: hs.URL + "/auth/refresh", HTTPClient: hc}
	if dpop {
		refresher = &oauth.Config{TokenURL: hs.URL + "/oauth/token", ClientID: "cli", HTTPClient: hc}
	}
	s := authrefresh.NewSession(nil, refresher, authrefresh.Options{
		RefreshTimeout: 5 * time.Second,
		MinBackoff:     20 * time.Millisecond,
		MaxBackoff:     500 * time.Millisecond,
		Logger:         logger,
		OnTokenChange: func(_, tok *authrefresh.Token) {
			if tok != nil {
				tokensMu.Lock()
				secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
				if len(tok.DPoPKey) > 0 {
					secrets = append(secrets, string(tok.DPoPKey[len(tok.DPoPKey)/2:])) // the private part sits mid-JWK
				}
				tokensMu.Unlock()
			}
		},
	})
	tok, err := jsonauth.Login(context.Background(), hc, hs.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if dpop {
		key, _ := oauth.NewDPoPKey()
		tok, err = (&oauth.Config{TokenURL: hs.URL + "/oauth/token", ClientID: "cli", DPoP: key, HTTPClient: hc}).PasswordLogin(context.Background(), authserver.DemoUser, authserver.DemoPassword)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	client, err := authrefresh.NewClient(hs.URL+"/api/v1/", s)
	if err != nil {
		t.Fatal(err)
	}
	client.HTTPClient.Transport.(*authrefresh.Transport).Base = transport

	srv.SetChaos(authserver.Chaos{
		Seed:              seed,
		RefreshLatencyMax: 100 * time.Millisecond,
		RefreshFailRate:   0.15,
		RefreshDropRate:   0.10,
		RefreshLostRate:   0.10,
		APICutRate:        0.01,
		RevokeRate:        0.0005,
	})

	// The run goes in rounds of at most 10 s. After each, the workers have
	// stopped, the server's records of the round are taken (and forgotten)
	// and checked, and the heap is measured: with both sides' per-request
	// records gone, it must stay flat from round to round.
	round := min(duration, 10*time.Second)
	rounds := max(1, int(duration/round))
	failures := map[string]int{}
	var requests, created, failedButCreated int
	var heaps []uint64
	for r := 0; r < rounds; r++ {
		cutBefore := srv.Faults().APICut
		outcomes := chaosRound(client, seed, r, round)
		products := srv.TakeProducts()
		cut := srv.Faults().APICut - cutBefore
		n, c, fbc := judgeChaosRound(t, outcomes, products, cut, failures)
		requests, created, failedButCreated = requests+n, created+c, failedButCreated+fbc
		// No token of the round in the round's debug log; then both are
		// dropped, so that only the library's memory is left to measure.
		tokensMu.Lock()
		if leaked := logs.ContainsAny(secrets); leaked {
			t.Error("a token appears in the debug log")
		}
		secrets = append(secrets[:0:0], secrets[max(0, len(secrets)-2):]...) // the current pair is still in use
		tokensMu.Unlock()
		logs.Reset()
		heaps = append(heaps, settledHeap())
	}
	srv.SetChaos(authserver.Chaos{})

	counters := srv.Counters()
	stats := s.Stats()
	if counters.ReuseDetections != 0 || stats.Rejections != 0 || failures["session-expired"] != 0 {
		t.Errorf("logged out without cause: %d reuse detections, %d rejections, %d session-expired failures", counters.ReuseDetections, stats.Rejections, failures["session-expired"])
	}
	if counters.Panics != 0 {
		t.Errorf("the server panicked %d times", counters.Panics)
	}
	if dpop && (counters.DPoPProofs == 0 || counters.DPoPReplays != 0 || counters.DPoPBadProofs != 0 || counters.DPoPKeyMismatch != 0 || counters.Unauthorized["dpop_bound"] != 0) {
		t.Errorf("DPoP: %d proofs, %d replayed, %d refused, %d key mismatches, %d bearer sends", counters.DPoPProofs, counters.DPoPReplays, counters.DPoPBadProofs, counters.DPoPKeyMismatch, counters.Unauthorized["dpop_bound"])
	}
	if created == 0 || created < requests/2 {
		t.Errorf("only %d of %d requests succeeded; the chaos drowned the test", created, requests)
	}
	// The session is still alive and usable once the faults stop.
	if err := client.Get(context.Background(), "me", nil); err != nil {
		t.Errorf("after the chaos: %v", err)
	}
	// Flat: the last round ends within 25 % (plus 1 MiB of noise) of the
	// first; a per-request leak of a request, response or buffer would add
	// kilobytes per request, tens of megabytes per round.
	first, last := heaps[0], heaps[len(heaps)-1]
	if float64(last) > float64(first)*1.25+(1<<20) {
		t.Errorf("heap after each round (KiB): %v — it grows", kib(heaps))
	}

	f := counters.Faults
	if dpop {
		t.Logf("DPoP: %d proofs accepted, %d nonce asks at the token endpoint, %d at the API, 0 replayed", counters.DPoPProofs, counters.DPoPNonceAsks, counters.Unauthorized["dpop_nonce"])
	}
	t.Logf("chaos: %s, %d requests (%.0f/s), %d created, failures %s, %d created-but-cut; faults %d (refresh delayed %d, 503 %d, dropped %d, lost %d; API cut %d; access revoked %d); %d refreshes, %d grace replays, %d reuse detections, 0 lost, 0 duplicates; heap after each of %d rounds %v KiB",
		duration, requests, float64(requests)/duration.Seconds(), created, formatCounts(failures), failedButCreated,
		f.Total(), f.RefreshDelayed, f.Refresh503, f.RefreshDropped, f.RefreshLost, f.APICut, f.AccessRevoked,
		stats.Refreshes, counters.GraceReplays, counters.ReuseDetections, rounds, kib(heaps))

	hs.CloseClientConnections()
	transport.CloseIdleConnections()
	hs.Close()
}

// chaosRound runs 32 workers POSTing unique products for d and returns what
// each request reported.
func chaosRound(client *authrefresh.Client, seed uint64, round int, d time.Duration) []chaosOutcome {
	const workers = 32
	deadline := time.Now().Add(d)
	outcomes := make([][]chaosOutcome, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed+uint64(round), uint64(w)))
			for i := 0; time.Now().Before(deadline) && i < 1_000_000; i++ {
				o := chaosOutcome{name: fmt.Sprintf("chaos-%d-%d-%d", round, w, i), price: float64(1+rng.IntN(100000)) / 100}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var p authserver.Product
				o.err = client.Post(ctx, "data", map[string]any{"name": o.name, "price": o.price}, &p)
				cancel()
				if o.err == nil {
					o.created = &p
				}
				outcomes[w] = append(outcomes[w], o)
			}
		}()
	}
	wg.Wait()
	var all []chaosOutcome
	for _, list := range outcomes {
		all = append(all, list...)
	}
	return all
}

// judgeChaosRound checks one round's outcomes against the server's records
// of that round, counts failures by class into failures, and returns the
// number of requests, of products created, and of failed requests whose
// product exists (their answer was cut: at most cut of them).
func judgeChaosRound(t *testing.T, outcomes []chaosOutcome, products []authserver.Product, cut uint64, failures map[string]int) (requests, created, failedButCreated int) {
	t.Helper()
	onServer := map[string][]authserver.Product{}
	for _, p := range products {
		onServer[p.Name] = append(onServer[p.Name], p)
	}
	attempted := map[string]bool{}
	for _, o := range outcomes {
		attempted[o.name] = true
		got := onServer[o.name]
		if len(got) > 1 {
			t.Errorf("%s exists %d times", o.name, len(got))
		}
		if o.err == nil {
			created++
			if len(got) != 1 || got[0].Price != o.price || got[0].ID != o.created.ID || o.created.Name != o.name {
				t.Errorf("%s reported created as %+v; the server has %+v", o.name, o.created, got)
			}
			continue
		}
		class := classifyFailure(o.err)
		if failures[class] == 0 {
			t.Logf("first %s failure: %v", class, o.err)
		}
		failures[class]++
		if class == "unclassified" && failures[class] <= 3 {
			t.Errorf("%s failed with an unclassified error: %v", o.name, o.err)
		}
		if len(got) == 1 {
			failedButCreated++
		}
	}
	for name := range onServer {
		if !attempted[name] {
			t.Errorf("the server has %s, which nobody sent", name)
		}
	}
	// A failed request whose product exists anyway must be one whose answer
	// the server cut after creating it; nothing else may create silently.
	if uint64(failedButCreated) > cut {
		t.Errorf("%d failed requests created their product, but only %d answers were cut", failedButCreated, cut)
	}
	return len(outcomes), created, failedButCreated
}

func kib(heaps []uint64) []uint64 {
	out := make([]uint64, len(heaps))
	for i, h := range heaps {
		out[i] = h >> 10
	}
	return out
}

// classifyFailure names the kind of a failed request; every kind is one a
// caller can act on. "unclassified" fails the test.
func classifyFailure(err error) string {
	var refused *authrefresh.NotReplayedError
	var apiErr *authrefresh.APIError
	var opErr *net.OpError // not net.Error: every *url.Error is one, whatever it wraps
	switch {
	case errors.Is(err, authrefresh.ErrSessionExpired), errors.Is(err, authrefresh.ErrNotLoggedIn):
		return "session-expired"
	case errors.Is(err, authrefresh.ErrRefreshTransient):
		return "refresh-transient"
	case errors.As(err, &refused):
		return "refused"
	case errors.As(err, &apiErr):
		return "api-" + strconv.Itoa(apiErr.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &opErr):
		return "network"
	}
	return "unclassified"
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

func settledHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// lockedBuffer is a bytes.Buffer a logger may write from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ContainsAny reports whether any non-empty needle is in the buffer.
func (b *lockedBuffer) ContainsAny(needles []string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range needles {
		if n != "" && bytes.Contains(b.buf.Bytes(), []byte(n)) {
			return true
		}
	}
	return false
}

// Reset empties the buffer.
func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = bytes.Buffer{}
}
