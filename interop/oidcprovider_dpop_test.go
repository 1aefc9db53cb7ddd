package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/proctest"
	"github.com/authrefresh/authrefresh/internal/redistest"
	"github.com/authrefresh/authrefresh/oauth"
)

// countsOf is what the provider counted so far.
func countsOf(t *testing.T, issuer string) proctest.OIDCCounts {
	return proctest.OIDCCountsOf(t, issuer)
}

// dpopAnswers counts, below a Transport, what a resource server answered
// about DPoP, and any token sent as a bearer token.
type dpopAnswers struct {
	base                          http.RoundTripper
	nonceAsks, badProofs, bearers atomic.Int64
}

func (d *dpopAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") {
		d.bearers.Add(1)
	}
	resp, err := d.base.RoundTrip(req)
	if err == nil {
		challenge := resp.Header.Get("WWW-Authenticate")
		if strings.Contains(challenge, "use_dpop_nonce") {
			d.nonceAsks.Add(1)
		}
		if strings.Contains(challenge, "invalid_dpop_proof") {
			d.badProofs.Add(1)
		}
	}
	return resp, err
}

// dpopProvider starts oidc-provider requiring DPoP nonces and discovers it.
func dpopProvider(t *testing.T, env ...string) (string, *oauth.ProviderMetadata) {
	t.Helper()
	issuer := startOIDCProvider(t, append([]string{"DPOP=1"}, env...)...)
	md, err := oauth.Discover(context.Background(), nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(md.DPoPSigningAlgValuesSupported, "ES256") {
		t.Fatalf("DPoP algorithms %v", md.DPoPSigningAlgValuesSupported)
	}
	return issuer, md
}

// A browser login with a DPoP key at oidc-provider (nonces required), then
// 200 concurrent callers of its userinfo (as the resource server) through
// a Session whose Config names no key (the token carries it, as for any
// process of a fleet) for more than 3 access-token lifetimes: refreshes
// follow the expiries, no call fails, no proof is refused or reused (the
// provider refuses a jti it has seen), no token leaves as a bearer token.
// Then the bound refresh token is revoked: the session ends once.
func TestOIDCProviderDPoPUserSessionUnderLoad(t *testing.T) {
	const ttl = 6 * time.Second
	issuer, md := dpopProvider(t, "AT_TTL=6")
	key, err := oauth.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := md.CheckDPoPKey(key); err != nil {
		t.Fatal(err)
	}
	grants := &grantCounter{}
	login := userClient(md, grants)
	login.DPoP = key
	tok := loginInBrowser(t, md, login)
	if tok.TokenType != "DPoP" || len(tok.DPoPKey) == 0 {
		t.Fatalf("token type %q, key carried %v", tok.TokenType, len(tok.DPoPKey) > 0)
	}
	fleet := userClient(md, grants)
	s := authrefresh.NewSession(nil, fleet, authrefresh.Options{})
	if err := s.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	base := &http.Transport{MaxIdleConnsPerHost: 200}
	defer base.CloseIdleConnections()
	answers := &dpopAnswers{base: base}
	api := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: answers}, Timeout: 30 * time.Second}
	r := callUnderLoad(api, md.UserinfoEndpoint, 200, 3*ttl+ttl/2)
	checkLoad(t, "oidc-provider (DPoP)", r, grants.count("refresh_token"), tok.ExpiresIn)
	c := countsOf(t, issuer)
	t.Logf("DPoP: %d nonce asks at userinfo, %d at the token endpoint (%v)", answers.nonceAsks.Load(), c.Errors["token:use_dpop_nonce"], c.Errors)
	if answers.badProofs.Load() != 0 || answers.bearers.Load() != 0 || c.Errors["token:invalid_grant"] != 0 || c.Errors["token:invalid_dpop_proof"] != 0 || c.Errors["userinfo:invalid_dpop_proof"] != 0 {
		t.Fatalf("refused proofs %d, bearer sends %d, provider errors %v", answers.badProofs.Load(), answers.bearers.Load(), c.Errors)
	}
	// A nonce the provider changes costs each caller at most one retry.
	if asks := answers.nonceAsks.Load(); asks > 200*(int64(r.elapsed/time.Minute)+2) {
		t.Fatalf("%d nonce asks at userinfo for 200 callers", asks)
	}
	cur, _ := s.Token(context.Background())
	endsOnceAfterRevocation(t, fleet, cur, fleet)
}

// Client credentials for a client whose tokens must be DPoP-bound: with a
// key, bound tokens (the nonce asked for once). Without one, oidc-provider
// answers invalid_grant, "grant request is invalid", without naming DPoP:
// a refusal, which the error reports as the provider worded it.
func TestOIDCProviderDPoPClientCredentials(t *testing.T) {
	_, md := dpopProvider(t)
	key, _ := oauth.NewDPoPKey()
	cc := &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "m2m-dpop", ClientSecret: "dpop-secret-0123456789", Scopes: []string{"api:read"}, DPoP: key}
	s := authrefresh.NewSession(nil, cc, authrefresh.Options{})
	tok, err := s.Token(context.Background())
	if err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("%v %v", tok, err)
	}
	if next, err := s.Refused(context.Background(), tok); err != nil || next.AccessToken == tok.AccessToken || next.TokenType != "DPoP" {
		t.Fatalf("a second acquisition: %v %v", next, err)
	}
	keyless := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "m2m-dpop", ClientSecret: "dpop-secret-0123456789", Scopes: []string{"api:read"}}, authrefresh.Options{})
	_, err = keyless.Token(context.Background())
	var re *authrefresh.RefreshError
	if !errors.Is(err, authrefresh.ErrRefreshRejected) || !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Fatalf("no key, a client that must use DPoP: %v", err)
	}
	t.Logf("without a key: %v", err)
}

// The CLI: a device login with --dpop, then request, then three sidecar
// processes sharing the profile's token file, 100 callers each, for more
// than 3 lifetimes of a DPoP-bound rotating refresh token: one refresh per
// lifetime between them, no call fails, no refresh token is presented
// with another key or twice.
func TestOIDCProviderDPoPCLIFleet(t *testing.T) {
	const ttl = 6 * time.Second
	issuer, _ := dpopProvider(t, "AT_TTL=6")
	config := t.TempDir()
	cliDeviceLogin(t, issuer, config)
	if out, err := authrefreshCmd(t, config, "request", "/me").CombinedOutput(); err != nil || !strings.Contains(string(out), "test-user") {
		t.Fatalf("request /me: %v %s", err, out)
	}
	if out, err := authrefreshCmd(t, config, "token").CombinedOutput(); err == nil || !strings.Contains(string(out), "DPoP-bound") {
		t.Fatalf("token handed out a bound token: %v %s", err, out)
	}
	before := countsOf(t, issuer)
	total := sidecarLoad(t, []string{config, config, config}, ttl, "--upstream", issuer)
	after := countsOf(t, issuer)
	checkLoad(t, "oidc-provider (DPoP, 3 sidecars, one file)", total, after.Refreshes-before.Refreshes, ttl)
	if after.Errors["token:invalid_grant"] != 0 || after.Errors["token:invalid_dpop_proof"] != 0 || after.Errors["userinfo:invalid_dpop_proof"] != 0 {
		t.Fatalf("provider errors %v", after.Errors)
	}
}

// The same through Redis: the login keeps the bound token (and its key)
// in a Redis session; three sidecar processes, each with a configuration
// directory of its own (as on three hosts: no local token file, no key),
// join it and share one refresh per lifetime.
func TestOIDCProviderDPoPCLIFleetRedis(t *testing.T) {
	const ttl = 6 * time.Second
	issuer, _ := dpopProvider(t, "AT_TTL=6")
	rdb := redistest.Start(t)
	url := "redis://" + rdb.Addr() + "/0"
	cliDeviceLogin(t, issuer, t.TempDir(), "--redis", url, "--session", "dpop-fleet")
	before := countsOf(t, issuer)
	total := sidecarLoad(t, []string{t.TempDir(), t.TempDir(), t.TempDir()}, ttl, "--redis", url, "--session", "dpop-fleet", "--upstream", issuer)
	after := countsOf(t, issuer)
	checkLoad(t, "oidc-provider (DPoP, 3 sidecars, Redis)", total, after.Refreshes-before.Refreshes, ttl)
	if after.Errors["token:invalid_grant"] != 0 || after.Errors["token:invalid_dpop_proof"] != 0 || after.Errors["userinfo:invalid_dpop_proof"] != 0 {
		t.Fatalf("provider errors %v", after.Errors)
	}
}

// cliDeviceLogin runs login --flow device --dpop for the public client
// "cli" with more flags, approving the code on the provider's page.
func cliDeviceLogin(t *testing.T, issuer, config string, more ...string) {
	t.Helper()
	approvedLogin(t, config, append([]string{"--issuer", issuer, "--client-id", "cli", "--flow", "device", "--dpop", "--scope", "openid api:read", "--api", issuer + "/"}, more...)...)
}

// sidecarLoad starts one sidecar process per configuration directory (with
// args) and has 100 callers GET /me through each for 3.5 lifetimes.
func sidecarLoad(t *testing.T, configs []string, ttl time.Duration, args ...string) loadReport {
	t.Helper()
	var proxies []string
	for _, config := range configs {
		proxies = append(proxies, startProxy(t, config, args...))
	}
	base := &http.Transport{MaxIdleConnsPerHost: 100}
	defer base.CloseIdleConnections()
	reports := make([]loadReport, len(proxies))
	var wg sync.WaitGroup
	for i, p := range proxies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = callUnderLoad(&http.Client{Transport: base, Timeout: 30 * time.Second}, p+"/me", 100, 3*ttl+ttl/2)
		}()
	}
	wg.Wait()
	var total loadReport
	for _, r := range reports {
		total.calls += r.calls
		total.failures += r.failures
		total.elapsed = max(total.elapsed, r.elapsed)
		if total.first == nil {
			total.first = r.first
		}
	}
	return total
}

// openid-client (panva's reference client) against the same provider and
// flow, with a DPoP-bound rotating token pair of its own login: 200
// callers of userinfo for 2.5 lifetimes, its refresh written the two ways
// applications write it (see openid-client-driver.mjs). What it saw and
// what the provider counted are logged beside authrefresh's figures of
// TestOIDCProviderDPoPUserSessionUnderLoad (INTEROP.md); the test fails
// only if the driver cannot run.
func TestOpenIDClientDPoPBeside(t *testing.T) {
	const ttl = 6 * time.Second
	issuer, md := dpopProvider(t, "AT_TTL=6")
	if _, err := os.Stat(filepath.Join("oidc-provider", "node_modules", "openid-client")); err != nil {
		unavailable(t, "openid-client is not installed (run: cd interop/oidc-provider && npm ci)")
	}
	for _, mode := range []string{"expiry", "queue"} {
		key, _ := oauth.NewDPoPKey()
		login := userClient(md, &grantCounter{})
		login.DPoP = key
		tok := loginInBrowser(t, md, login)
		var jwk map[string]string
		if err := json.Unmarshal(tok.DPoPKey, &jwk); err != nil {
			t.Fatal(err)
		}
		in, _ := json.Marshal(map[string]any{"issuer": issuer, "mode": mode, "callers": 200, "duration_ms": (2*ttl + ttl/2).Milliseconds(),
			"access_token": tok.AccessToken, "refresh_token": tok.RefreshToken, "expires_in": tok.ExpiresIn.Seconds(), "jwk": jwk})
		before := countsOf(t, issuer)
		cmd := exec.Command("node", "openid-client-driver.mjs")
		cmd.Dir = "oidc-provider"
		cmd.Stdin = bytes.NewReader(in)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", mode, err, stderr.String())
		}
		var got struct {
			Calls, Failures, Refreshes int
			RefreshFailures            int    `json:"refresh_failures"`
			FirstError                 string `json:"first_error"`
		}
		if err := json.Unmarshal(out, &got); err != nil || got.Calls == 0 {
			t.Fatalf("%s: %v %s", mode, err, out)
		}
		after := countsOf(t, issuer)
		diff := func(k string) int { return after.Errors[k] - before.Errors[k] }
		t.Logf("openid-client (%s): %d calls by 200 callers in %v, %d failed (first: %q); %d refreshes, %d refused; the provider: %d refresh grants, %d invalid_grant, %d use_dpop_nonce at userinfo, %d at the token endpoint, %d invalid_token at userinfo",
			mode, got.Calls, 2*ttl+ttl/2, got.Failures, got.FirstError, got.Refreshes, got.RefreshFailures,
			after.Refreshes-before.Refreshes, diff("token:invalid_grant"), diff("userinfo:use_dpop_nonce"), diff("token:use_dpop_nonce"), diff("userinfo:invalid_token"))
	}
}
