package browser

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAPIRoute: a browser's API call through each, as processes on
// this machine, against one upstream (which only checks that a token
// came): direct, with the token; through the sidecar (authrefresh proxy,
// a client-credentials token); through the BFF (authrefresh bff, sessions
// in Redis, sealed); through oauth2-proxy (sessions in Redis). 16 callers
// at once. Every call is the same request, as a browser on this host sends
// it whichever port it calls: the CSRF header, and the cookies of both the
// BFF's session and oauth2-proxy's (a browser sends a host's cookies to
// each of its ports), so that what differs is each hop's own work.
//
// The four are measured in turns of routeTurn calls each, in an order
// that rotates every round, so that each sees the same machine: run one
// after the other, the one measured later ran on a warmer (or busier)
// machine, and that alone moved their ratio by ±8 %. Each reports
// requests/s, the 50th and 99th percentile latencies in µs, and the CPU
// time its hop's process spent per request; bff/sidecar-added-p50 is the
// BFF's added latency (its p50 less the direct one's) over the sidecar's.
// On this machine's two cores, shared by the callers, the upstream and the
// hop, the added latency is mostly the hop's CPU time.
//
//	go test -run '^$' -bench APIRoute -benchtime 20000x
func BenchmarkAPIRoute(b *testing.B) { benchmarkAPIRoute(b, 16) }

// BenchmarkAPIRouteOneCaller: BenchmarkAPIRoute with one caller, so that
// no call waits for another's CPU: a hop's added latency is then its own
// time on the call's path.
func BenchmarkAPIRouteOneCaller(b *testing.B) { benchmarkAPIRoute(b, 1) }

func benchmarkAPIRoute(b *testing.B, callers int) {
	p := startPeers(b, time.Hour, 50*time.Minute, false)
	_, authrefresh := build(b)
	dir := b.TempDir()
	env := []string{"AUTHREFRESH_CONFIG_DIR=" + dir}
	secret := filepath.Join(dir, "m2m-secret")
	os.WriteFile(secret, []byte("basic-secret-0123456789"), 0o600)
	if out, err := execOutput(authrefresh, env, "login", "--issuer", p.issuer, "--client-id", "m2m-basic", "--client-secret-file", secret); err != nil {
		b.Fatalf("login: %v %s", err, out)
	}
	sidecar := "http://" + freeAddr(b)
	sidecarPID := startProgram(b, env, "authrefresh proxy on", authrefresh, "proxy", "--listen", strings.TrimPrefix(sidecar, "http://"), "--upstream", p.bffAPI.URL, "--quiet")

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	b.Cleanup(hc.CloseIdleConnections)
	browser := []string{"X-CSRF", "1", "Cookie", loginCookie(b, p.bffOrigin+"/bff/login?returnUrl=/", "bff") + "; " +
		loginCookie(b, p.o2pOrigin+"/oauth2/start?rd=%2F", "_oauth2_proxy")}
	targets := []*routeTarget{
		{name: "direct", req: get(p.bffAPI.URL+"/api/me", append(browser, "Authorization", "Bearer a-token-as-long-as-the-providers-0123456789")...)},
		{name: "sidecar", pid: sidecarPID, req: get(sidecar+"/api/me", browser...)},
		{name: "bff", pid: p.bffPID, req: get(p.bffOrigin+"/api/me", browser...)},
		{name: "oauth2-proxy", pid: p.o2pPID, req: get(p.o2pOrigin+"/api/me", browser...)},
	}
	for _, tg := range targets {
		if err := tg.call(hc); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for round, done := 0, 0; done < b.N; round++ {
		n := min(routeTurn, b.N-done)
		for i := range targets {
			if err := targets[(round+i)%len(targets)].turn(hc, n, callers); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
	b.StopTimer()
	p50 := map[string]float64{}
	for _, tg := range targets {
		slices.Sort(tg.took)
		p50[tg.name] = float64(tg.took[len(tg.took)/2].Microseconds())
		b.ReportMetric(float64(len(tg.took))/tg.elapsed.Seconds(), tg.name+"-req/s")
		b.ReportMetric(p50[tg.name], tg.name+"-p50-µs")
		b.ReportMetric(float64(tg.took[len(tg.took)*99/100].Microseconds()), tg.name+"-p99-µs")
		if tg.pid != 0 {
			b.ReportMetric(float64(tg.cpu.Microseconds())/float64(len(tg.took)), tg.name+"-CPU-µs/req")
		}
	}
	b.ReportMetric((p50["bff"]-p50["direct"])/(p50["sidecar"]-p50["direct"]), "bff/sidecar-added-p50")
}

// routeTurn is how many calls a target of BenchmarkAPIRoute gets in a
// turn: long enough that its callers run at once most of the turn.
const routeTurn = 1000

// routeTarget is one way to the API, and what its calls took.
type routeTarget struct {
	name    string
	pid     int // the hop's process; 0 for none
	req     func() *http.Request
	took    []time.Duration
	elapsed time.Duration // the turns' wall time
	cpu     time.Duration // the hop's CPU time during its turns
}

// turn makes n calls, callers at once, and adds what they took to t's
// figures.
func (t *routeTarget) turn(hc *http.Client, n, callers int) error {
	var next atomic.Int64
	var mu sync.Mutex
	errs := make(chan error, callers)
	start, cpu := time.Now(), cpuTime(t.pid)
	for range callers {
		go func() {
			var mine []time.Duration
			var err error
			for next.Add(1) <= int64(n) && err == nil {
				t0 := time.Now()
				if err = t.call(hc); err == nil {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			t.took = append(t.took, mine...)
			mu.Unlock()
			errs <- err
		}()
	}
	var first error
	for range callers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	t.elapsed += time.Since(start)
	t.cpu += cpuTime(t.pid) - cpu
	return first
}

// call makes one call through t, which must answer 200.
func (t *routeTarget) call(hc *http.Client) error {
	resp, err := hc.Do(t.req())
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", t.name, resp.StatusCode)
	}
	return nil
}

// get is a GET of u with headers (name, value, ...), made anew for each
// call.
func get(u string, headers ...string) func() *http.Request {
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return req
	}
}

// loginCookie logs in at login (the provider approves at once), as a
// browser following the redirects, and returns the Cookie header of the
// session cookie name.
func loginCookie(tb testing.TB, login, name string) string {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(login)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	u, _ := url.Parse(login)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == name {
			return fmt.Sprintf("%s=%s", ck.Name, ck.Value)
		}
	}
	tb.Fatalf("no %s cookie after the login at %s (%d)", name, login, resp.StatusCode)
	return ""
}
