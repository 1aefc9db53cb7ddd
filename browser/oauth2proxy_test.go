package browser

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/internal/redistest"
	"github.com/chromedp/chromedp"
)

// peers is oidc-provider (rotating refresh tokens, access tokens of
// accessTTL), one Redis, and in front of one API (userinfoAPI, one
// instance each, to tell their calls apart): the authrefresh bff command
// and oauth2-proxy, each keeping its sessions in that Redis; and
// oauth2-proxy again with its default store, the session in the cookie.
type peers struct {
	issuer                                string
	bffOrigin, o2pOrigin, o2pCookieOrigin string
	bffAPI, o2pAPI, o2pCookieAPI          *userinfoAPI
	bffPID, o2pPID                        int // the processes of the bff command and oauth2-proxy on Redis
}

// proxyRefresh is oauth2-proxy's --cookie-refresh, below the access
// token's lifetime as its documentation advises. With checkTokens false,
// the APIs take any token without asking the provider (to measure the
// hops, not the provider).
func startPeers(t testing.TB, accessTTL, proxyRefresh time.Duration, checkTokens bool) *peers {
	t.Helper()
	oauth2Proxy, authrefresh := build(t)
	rd := redistest.Start(t)
	p := &peers{bffOrigin: "http://" + freeAddr(t), o2pOrigin: "http://" + freeAddr(t), o2pCookieOrigin: "http://" + freeAddr(t)}
	p.issuer = startOIDCProvider(t, "BFF_ORIGIN="+p.bffOrigin, "PROXY_ORIGIN="+p.o2pOrigin+","+p.o2pCookieOrigin, "AT_TTL="+strconv.Itoa(int(accessTTL/time.Second)))
	md := discover(t, p.issuer)
	if !checkTokens {
		md = nil
	}
	p.bffAPI, p.o2pAPI, p.o2pCookieAPI = newUserinfoAPI(t, md), newUserinfoAPI(t, md), newUserinfoAPI(t, md)

	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	env := []string{"AUTHREFRESH_CONFIG_DIR=" + dir}
	keys := filepath.Join(dir, "seal-keys")
	if out, err := execOutput(authrefresh, env, "seal-key", keys); err != nil {
		t.Fatalf("seal-key: %v %s", err, out)
	}
	p.bffPID = startProgram(t, env, "authrefresh bff on", authrefresh, "bff", "--issuer", p.issuer, "--client-id", "bff",
		"--client-secret-file", write("bff-secret", bffSecret), "--url", p.bffOrigin, "--api", "/api/="+p.bffAPI.URL+"/",
		"--redis", "redis://"+rd.Addr(), "--seal-key", keys)

	// As its documentation configures it for an API behind it: the access
	// token passed upstream, sessions in Redis (or its default, the
	// cookie), refreshed by --cookie-refresh, API routes answered 401
	// rather than redirected.
	proxySecret := write("proxy-secret", "proxy-secret-0123456789")
	for _, o := range []struct {
		origin, client string
		api            *userinfoAPI
		store          []string
	}{
		{p.o2pOrigin, "oauth2-proxy", p.o2pAPI, []string{"--session-store-type", "redis", "--redis-connection-url", "redis://" + rd.Addr()}},
		{p.o2pCookieOrigin, "oauth2-proxy-2", p.o2pCookieAPI, []string{"--session-store-type", "cookie"}},
	} {
		secret := make([]byte, 32)
		rand.Read(secret)
		pid := startProgram(t, []string{"OAUTH2_PROXY_COOKIE_SECRET=" + base64.RawURLEncoding.EncodeToString(secret)}, o.origin+"/ping", oauth2Proxy, append([]string{
			"--http-address", strings.TrimPrefix(o.origin, "http://"),
			"--provider", "oidc", "--oidc-issuer-url", p.issuer, "--client-id", o.client, "--client-secret-file", proxySecret,
			"--cookie-name", "_" + strings.ReplaceAll(o.client, "-", "_"), // one host: each its own cookie
			"--redirect-url", o.origin + "/oauth2/callback", "--upstream", o.api.URL + "/", "--scope", "openid email",
			"--code-challenge-method", "S256", "--skip-provider-button", "--email-domain", "*", "--cookie-secure=false",
			"--pass-access-token", "--cookie-refresh", proxyRefresh.String(),
			"--api-route", "^/api/", "--request-logging=false", "--auth-logging=false"}, o.store...)...)
		if o.origin == p.o2pOrigin {
			p.o2pPID = pid
		}
	}
	return p
}

// The BFF and oauth2-proxy side by side, in Chromium, against
// oidc-provider with rotating refresh tokens of 6 s access tokens: in each
// of three rounds, once the access tokens have expired, the page of each
// fires 50 parallel API calls. The BFF (sessions in Redis): every call
// 200, one refresh per round, no refresh token refused, no browser cookie
// reaching the API. oauth2-proxy's figures, on Redis as its documentation
// configures it for this and with its default cookie sessions, are logged
// (see BENCHMARKS.md).
func TestBesideOAuth2Proxy(t *testing.T) {
	const accessTTL, rounds = 6 * time.Second, 3
	p := startPeers(t, accessTTL, 5*time.Second, true)
	browserCtx := newBrowser(t)
	type peer struct {
		name, client, login string
		api                 *userinfoAPI
		tab                 context.Context
		failed, lost        int
		refreshes, refused  int
		reused              int
	}
	all := []*peer{
		{name: "authrefresh bff", client: "bff", login: p.bffOrigin + "/bff/login?returnUrl=/", api: p.bffAPI},
		{name: "oauth2-proxy (Redis)", client: "oauth2-proxy", login: p.o2pOrigin + "/oauth2/start?rd=%2F", api: p.o2pAPI},
		{name: "oauth2-proxy (cookie)", client: "oauth2-proxy-2", login: p.o2pCookieOrigin + "/oauth2/start?rd=%2F", api: p.o2pCookieAPI},
	}
	fifty := func(tab context.Context) (failed int) {
		t.Helper()
		statuses, err := chromedp.Run(tab, chromedp.Evaluate[[]int](`Promise.all(Array.from({ length: 50 }, () =>
			fetch('/api/me', { headers: { 'X-CSRF': '1' } }).then((r) => r.status, () => 0)))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s != 200 {
				failed++
			}
		}
		return failed
	}
	for _, pr := range all {
		// A tab each, on its app's origin: a navigation would itself go
		// through the proxy, and refresh before the calls.
		tab, cancel := chromedp.NewContext(browserCtx)
		defer cancel()
		pr.tab = tab
		if err := chromedp.Do(tab, chromedp.Navigate(pr.login), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
			t.Fatal(err)
		}
		if failed := fifty(tab); failed != 0 {
			t.Fatalf("%s after its login: %d of 50 calls failed", pr.name, failed)
		}
	}
	start := countsOf(t, p.issuer).Clients
	for round := 1; round <= rounds; round++ {
		// The provider's clock is its own: the test waits for the tokens
		// to expire there.
		time.Sleep(accessTTL + 500*time.Millisecond)
		for _, pr := range all {
			pr.failed += fifty(pr.tab)
			if fifty(pr.tab) == 50 {
				pr.lost++ // the session is gone: the user must log in again
				if err := chromedp.Do(pr.tab, chromedp.Navigate(pr.login), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	end := countsOf(t, p.issuer).Clients
	t.Logf("50 parallel calls from the page at each of %d access-token expiries (6 s tokens, rotating refresh tokens):", rounds)
	for _, pr := range all {
		pr.refreshes = end[pr.client].Refreshes - start[pr.client].Refreshes
		for k, n := range end[pr.client].Errors {
			if strings.HasPrefix(k, "token:") {
				pr.refused += n - start[pr.client].Errors[k]
			}
			if strings.Contains(k, "already used") {
				pr.reused += n - start[pr.client].Errors[k]
			}
		}
		t.Logf("  %-22s %3d of %d calls failed, %d refreshes, %d refresh requests refused (%d a rotated refresh token presented again), %d sessions lost; the API saw the browser's Cookie header on %d of %d calls",
			pr.name, pr.failed, rounds*50, pr.refreshes, pr.refused, pr.reused, pr.lost, pr.api.cookies.Load(), pr.api.calls.Load())
		if pr.refused > 0 {
			t.Logf("  %-22s its refusals at the provider: %v", "", fmt.Sprint(end[pr.client].Errors))
		}
	}
	if b := all[0]; b.failed != 0 || b.lost != 0 || b.refreshes != rounds || b.refused != 0 || b.api.cookies.Load() != 0 {
		t.Fatalf("the BFF: %d calls failed, %d sessions lost, %d refreshes, %d refused, %d calls with the browser's cookies; want 0, 0, %d, 0, 0",
			b.failed, b.lost, b.refreshes, b.refused, b.api.cookies.Load(), rounds)
	}
}
