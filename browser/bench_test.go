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
	"testing"
	"time"
)

// BenchmarkAPIRoute: an API call through each, as processes on this
// machine, against one upstream (which only checks that a token came):
// direct, with the token; through the sidecar (authrefresh proxy, a
// client-credentials token); through the BFF (authrefresh bff, sessions
// in Redis, sealed) with its cookie and the CSRF header; through
// oauth2-proxy (sessions in Redis) with its cookie. 16 callers at once;
// each reports requests/s, the 50th and 99th percentile latencies in µs,
// and the CPU time the hop's process spent per request. The added latency
// of a hop is its p50 less the direct one's; on this machine's two cores,
// shared by the callers, the upstream and the hop, it is mostly the hop's
// CPU time.
//
//	go test -run '^$' -bench APIRoute -benchtime 20000x
func BenchmarkAPIRoute(b *testing.B) {
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
	targets := []struct {
		name string
		pid  int // the hop's process
		req  func() *http.Request
	}{
		{"direct", 0, get(p.bffAPI.URL+"/api/me", "Authorization", "Bearer a-token-as-long-as-the-providers-0123456789")},
		{"sidecar", sidecarPID, get(sidecar + "/api/me")},
		{"bff", p.bffPID, get(p.bffOrigin+"/api/me", "X-CSRF", "1", "Cookie", loginCookie(b, p.bffOrigin+"/bff/login?returnUrl=/", "bff"))},
		{"oauth2-proxy", p.o2pPID, get(p.o2pOrigin+"/api/me", "Cookie", loginCookie(b, p.o2pOrigin+"/oauth2/start?rd=%2F", "_oauth2_proxy"))},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			if resp, err := hc.Do(tg.req()); err != nil || resp.StatusCode != 200 {
				b.Fatalf("%s: %v %v", tg.name, err, resp)
			}
			var mu sync.Mutex
			var all []time.Duration
			b.SetParallelism(8)
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime(tg.pid)
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					resp, err := hc.Do(tg.req())
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("%s: %d", tg.name, resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			})
			elapsed, cpu := time.Since(start), cpuTime(tg.pid)-cpu
			b.StopTimer()
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			if tg.pid != 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "hop-CPU-µs/req")
			}
		})
	}
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
