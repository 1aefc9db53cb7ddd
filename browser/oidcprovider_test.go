package browser

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/internal/proctest"
	"github.com/authrefresh/authrefresh/internal/redistest"
	"github.com/authrefresh/authrefresh/oauth"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/chromedp/chromedp"
)

// startOIDCProvider runs panva's oidc-provider (../interop/oidc-provider/
// server.mjs, which approves every interaction as "test-user") with env,
// and returns its issuer. Without node or the npm install it skips, or
// fails under AUTHREFRESH_REQUIRE_BROWSER=1.
func startOIDCProvider(t testing.TB, env ...string) string {
	t.Helper()
	return proctest.OIDCProvider(t, "../interop/oidc-provider", func(why string) {
		if os.Getenv("AUTHREFRESH_REQUIRE_BROWSER") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}, env...)
}

// countsOf is what oidc-provider counted so far: refresh_token grants, and
// errors by endpoint and code ("token:invalid_grant": a refresh token
// refused, a rotated one presented again among them), also by client.
func countsOf(t testing.TB, issuer string) proctest.OIDCCounts {
	return proctest.OIDCCountsOf(t, issuer)
}

// discover is the provider's metadata.
func discover(t testing.TB, issuer string) *oauth.ProviderMetadata {
	t.Helper()
	md, err := oauth.Discover(context.Background(), nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// execOutput runs a program to its end, with env added.
func execOutput(name string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

// revokeAt revokes token at the provider as the bff client (RFC 7009).
func revokeAt(t *testing.T, md *oauth.ProviderMetadata, token, hint string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, md.RevocationEndpoint, strings.NewReader(url.Values{"token": {token}, "token_type_hint": {hint}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bff", bffSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoking at the provider: %d", resp.StatusCode)
	}
}

// bffSecret is the bff client's secret in server.mjs.
const bffSecret = "bff-secret-0123456789"

// userinfoAPI is the API behind the BFF (and oauth2-proxy): a call passes
// when the provider's userinfo endpoint accepts its access token — from
// Authorization, or X-Forwarded-Access-Token as oauth2-proxy passes it —
// and answers the user's claims; else 401 invalid_token. Without the
// provider's metadata (nil) it takes any token, answering {"ok":true}. It
// counts the calls, and those that came with a Cookie header.
type userinfoAPI struct {
	URL            string
	calls, cookies atomic.Int64
	mu             sync.Mutex
	last           string // the last access token
}

func newUserinfoAPI(t testing.TB, md *oauth.ProviderMetadata) *userinfoAPI {
	t.Helper()
	a := &userinfoAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		if r.Header.Get("Cookie") != "" {
			a.cookies.Add(1)
		}
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if v := r.Header.Get("X-Forwarded-Access-Token"); v != "" {
			tok = v
		}
		a.mu.Lock()
		a.last = tok
		a.mu.Unlock()
		if md == nil {
			if tok == "" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, md.UserinfoEndpoint, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func (a *userinfoAPI) token() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// balancer sends each request to the next replica in turn, as a load
// balancer in front of BFF replicas does, and says which in X-Replica.
type balancer struct {
	mu       sync.Mutex
	replicas []*url.URL
	next     int
}

func (b *balancer) set(i int, base string) {
	u, _ := url.Parse(base)
	b.mu.Lock()
	b.replicas[i] = u
	b.mu.Unlock()
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	i := b.next % len(b.replicas)
	b.next++
	target := b.replicas[i]
	b.mu.Unlock()
	w.Header().Set("X-Replica", strconv.Itoa(i))
	httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
}

// appPage is the app's page in these tests: the calls are the page's own
// fetches.
const appPage = `<!doctype html><title>app</title><p id="ready">the app</p>`

// The BFF with oidc-provider, in Chromium, two replicas on one Redis
// behind a balancer:
//   - the login goes through the provider and back (the callback reaching
//     either replica), then the page's calls succeed;
//   - nothing the page's JavaScript can read holds a token: cookies,
//     storage, the answers of /bff/user and the API;
//   - 50 parallel calls at the access token's expiry: all 200, one
//     refresh at the provider between the two replicas, no refresh token
//     presented twice;
//   - a replica restarted keeps the session;
//   - a logout at the provider (its end-session page, in the browser)
//     reaches the BFF by back-channel: the next call is 401 on both
//     replicas within a second;
//   - the app's logout navigation ends the session and the provider's,
//     and comes back to the app;
//   - the refresh token revoked at the provider: one 401 session_expired,
//     then not_logged_in, one refusal at the provider — nothing loops.
func TestOIDCProviderReplicasOnRedis(t *testing.T) {
	ctx := newBrowser(t)
	rd := redistest.Start(t)
	rc := rd.Client(t)
	keyring := authtest.Keyring(t, "k1")
	lb := &balancer{replicas: make([]*url.URL, 2)}
	front := httptest.NewUnstartedServer(lb)
	origin := "http://" + front.Listener.Addr().String()
	issuer := startOIDCProvider(t, "BFF_ORIGIN="+origin)
	md := discover(t, issuer)
	api := newUserinfoAPI(t, md)
	var offset atomic.Int64
	var keys sync.Map
	store := func(key string) authrefresh.Store {
		keys.Store(key, true)
		s := redisstore.New(rc, "bff:"+key)
		s.Keyring = keyring
		return s
	}
	cfg := bff.Config{
		Provider: md,
		Client:   oauth.Config{ClientID: "bff", ClientSecret: bffSecret},
		URL:      origin,
		APIs:     []bff.API{{Prefix: "/api/", Upstream: api.URL + "/"}},
		Static:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, appPage) }),
		Store:    store,
		Clock:    func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	replica := func() *httptest.Server {
		app, err := bff.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(app)
		t.Cleanup(srv.Close)
		return srv
	}
	first := replica()
	lb.set(0, first.URL)
	lb.set(1, replica().URL)
	front.Start()
	t.Cleanup(front.Close)

	login := func() {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/bff/login?returnUrl=/"), chromedp.WaitVisible(chromedp.CSS("#ready"))); err != nil {
			t.Fatal(err)
		}
	}
	// calls fetches path from the page, n at once, and returns each
	// answer's status, replica and body.
	type answer struct {
		Status  int
		Replica string
		Body    string
	}
	calls := func(path string, n int) []answer {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[[]answer](`Promise.all(Array.from({ length: `+strconv.Itoa(n)+` }, () =>
			fetch('`+path+`', { headers: { 'X-CSRF': '1' } }).then(async (r) => ({ Status: r.status, Replica: r.headers.get('X-Replica'), Body: await r.text() }))))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// onBoth is the status of path on each replica: one call each.
	onBoth := func(path string) map[string]int {
		t.Helper()
		got := map[string]int{}
		for _, a := range append(calls(path, 1), calls(path, 1)...) {
			got[a.Replica] = a.Status
		}
		return got
	}

	login()
	user := calls("/bff/user", 1)[0]
	if user.Status != 200 || !strings.Contains(user.Body, `"sub":"test-user"`) {
		t.Fatalf("/bff/user after the login: %+v", user)
	}
	if got := onBoth("/api/me"); got["0"] != 200 || got["1"] != 200 {
		t.Fatalf("the API on each replica: %v", got)
	}
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const h = { 'X-CSRF': '1' };
		const user = await (await fetch('/bff/user', { headers: h })).text();
		const me = await (await fetch('/api/me', { headers: h })).text();
		return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage), user, me, document.documentElement.outerHTML].join('\n');
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if tok := api.token(); len(tok) < 20 || strings.Contains(visible, tok) || strings.Contains(visible, "eyJ") || strings.Contains(visible, "refresh") {
		t.Fatalf("a token is visible to the page's JavaScript (access token %d bytes): %.300s", len(tok), visible)
	}
	if n := api.cookies.Load(); n != 0 {
		t.Fatalf("%d API calls came with the browser's cookies", n)
	}

	// 50 parallel calls as the access token expires (the BFF's clock
	// moved past its 60 s; oidc-provider revokes the whole grant when an
	// access token is revoked, so the token must expire instead).
	offset.Add(int64(61 * time.Second))
	before := countsOf(t, issuer)
	fifty := calls("/api/me", 50)
	after := countsOf(t, issuer)
	replicas := map[string]int{}
	for i, a := range fifty {
		if a.Status != 200 {
			t.Fatalf("call %d of 50: %+v (provider: %+v then %+v)", i, a, before, after)
		}
		replicas[a.Replica]++
	}
	if n := after.Refreshes - before.Refreshes; n != 1 || after.Errors["token:invalid_grant"] != before.Errors["token:invalid_grant"] || len(replicas) != 2 {
		t.Fatalf("50 calls over replicas %v: %d refreshes at the provider, %d refresh tokens refused; want 1 and 0",
			replicas, n, after.Errors["token:invalid_grant"]-before.Errors["token:invalid_grant"])
	}
	t.Logf("oidc-provider, two BFF replicas on Redis: 50 parallel calls at the access token's expiry: 50 × 200 (%v by replica), %d refresh", replicas, after.Refreshes-before.Refreshes)

	// A replica restarted on the same Redis keeps the session.
	first.Close()
	lb.set(0, replica().URL)
	if got := onBoth("/api/me"); got["0"] != 200 || got["1"] != 200 {
		t.Fatalf("after a replica's restart: %v", got)
	}

	// A logout at the provider, in the browser: its back-channel logout
	// reaches one replica; a second on, both answer 401.
	if err := chromedp.Do(ctx, chromedp.Navigate(issuer+"/session/end"), chromedp.WaitVisible(chromedp.CSS("#signed-out"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.CSS("#ready"))); err != nil {
		t.Fatal(err)
	}
	offset.Add(int64(time.Second))
	before, reached := countsOf(t, issuer), api.calls.Load()
	for _, a := range append(calls("/api/me", 1), calls("/api/me", 1)...) {
		if a.Status != 401 || !strings.Contains(a.Body, "not_logged_in") {
			t.Fatalf("a second after the provider's back-channel logout: %+v", a)
		}
	}
	// Ended by the logout token, not found dead by a refresh.
	if n, refused := api.calls.Load()-reached, countsOf(t, issuer).Errors["token:invalid_grant"]-before.Errors["token:invalid_grant"]; n != 0 || refused != 0 {
		t.Fatalf("after the back-channel logout: %d API calls, %d refreshes refused", n, refused)
	}

	// The app's logout: a navigation to /bff/user's logout_url, through
	// the provider's end-session endpoint and back to the app.
	login()
	var out struct {
		LogoutURL string `json:"logout_url"`
	}
	if err := json.Unmarshal([]byte(calls("/bff/user", 1)[0].Body), &out); err != nil || out.LogoutURL == "" {
		t.Fatalf("/bff/user: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+out.LogoutURL), chromedp.WaitVisible(chromedp.CSS("#ready"))); err != nil {
		t.Fatal(err)
	}
	where, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || where != origin+"/" {
		t.Fatalf("after the logout the browser is at %q (%v)", where, err)
	}
	offset.Add(int64(time.Second))
	if got := onBoth("/api/me"); got["0"] != 401 || got["1"] != 401 {
		t.Fatalf("after the app's logout: %v", got)
	}

	// The refresh token revoked at the provider.
	login()
	if got := onBoth("/api/me"); got["0"] != 200 || got["1"] != 200 {
		t.Fatalf("after a new login: %v", got)
	}
	refresh := ""
	keys.Range(func(k, _ any) bool {
		if tok, err := store(k.(string)).Load(context.Background()); err == nil && tok != nil && tok.RefreshToken != "" {
			refresh = tok.RefreshToken
		}
		return true
	})
	if refresh == "" {
		t.Fatal("no live session's refresh token in Redis")
	}
	revokeAt(t, md, refresh, "refresh_token")
	before = countsOf(t, issuer)
	if a := calls("/api/me", 1)[0]; a.Status != 401 || !strings.Contains(a.Body, "session_expired") {
		t.Fatalf("the first call after the revocation: %+v", a)
	}
	offset.Add(int64(time.Second))
	for _, a := range append(calls("/api/me", 1), calls("/api/me", 1)...) {
		if a.Status != 401 || !strings.Contains(a.Body, "not_logged_in") {
			t.Fatalf("a call after the session ended: %+v", a)
		}
	}
	if n := countsOf(t, issuer).Errors["token:invalid_grant"] - before.Errors["token:invalid_grant"]; n != 1 {
		t.Fatalf("%d refusals at the provider; want 1", n)
	}
}
