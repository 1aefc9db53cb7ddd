package bff_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/oauth"
	"github.com/authrefresh/authrefresh/seal"
)

// world is a provider (the reference server), an upstream that records
// what reaches it in front of the provider's API, and a BFF on loopback.
type world struct {
	provider *authserver.Server
	cfg      bff.Config // the first BFF's, for replicas
	bffURL   string
	app      *bff.BFF
	mu       sync.Mutex
	seen     []http.Header // the headers of each request the upstream got
	calls    atomic.Int64
	now      atomic.Int64 // the BFF's clock, Unix nanoseconds
}

func newWorld(t testing.TB, store ...func(key string) authrefresh.Store) *world {
	t.Helper()
	w := &world{}
	w.now.Store(time.Now().UnixNano())
	srv, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser, AccessTTL: time.Hour,
		Clients: map[string]string{"bff": "bff-secret"}})
	w.provider = srv
	upstream := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.calls.Add(1)
		w.mu.Lock()
		w.seen = append(w.seen, r.Header.Clone())
		w.mu.Unlock()
		rw.Header().Add("Set-Cookie", "upstream=1; Path=/")
		r.URL.Path = "/api/v1/" + strings.TrimPrefix(r.URL.Path, "/v1/")
		srv.ServeHTTP(rw, r)
	}))
	t.Cleanup(upstream.Close)
	w.cfg = bff.Config{
		Provider: &oauth.ProviderMetadata{Issuer: issuer, AuthorizationEndpoint: issuer + "/oauth/authorize", TokenEndpoint: issuer + "/oauth/token", RevocationEndpoint: issuer + "/oauth/revoke",
			EndSessionEndpoint: issuer + "/oauth/end-session"},
		Client: oauth.Config{ClientID: "bff", ClientSecret: "bff-secret"},
		URL:    w.bffURL,
		APIs:   []bff.API{{Prefix: "/api/", Upstream: upstream.URL + "/v1/"}},
		Static: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			io.WriteString(rw, "the app at "+r.URL.Path)
		}),
		IdleTimeout: 10 * time.Minute,
		Clock:       func() time.Time { return time.Unix(0, w.now.Load()) },
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if len(store) > 0 {
		w.cfg.Store = store[0]
	}
	w.bffURL, w.app = w.replica(t)
	return w
}

// replica starts another BFF like the first, on its own port, and returns
// its URL: a replica behind the same origin, or the BFF after a restart.
func (w *world) replica(t testing.TB) (string, *bff.BFF) {
	t.Helper()
	return w.replicaOf(t, "")
}

// replicaOf is replica for the origin the browser sees ("" for its own
// address), as replicas behind a load balancer are configured.
func (w *world) replicaOf(t testing.TB, origin string) (string, *bff.BFF) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	cfg := w.cfg
	cfg.URL = cmp.Or(origin, "http://"+hs.Listener.Addr().String())
	app, err := bff.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = app
	hs.Start()
	t.Cleanup(hs.Close)
	return "http://" + hs.Listener.Addr().String(), app
}

// fileStores keeps each key's records in a file of dir, sealed with
// keyring unless nil: BFFs given it share the sessions, as replicas on one
// directory do.
func fileStores(dir string, keyring *seal.Keyring) func(key string) authrefresh.Store {
	return func(key string) authrefresh.Store {
		return &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName(key)), Keyring: keyring}
	}
}

// memoryStores keeps each key's records in memory, shared by every BFF
// given it: replicas in one process.
func memoryStores() func(key string) authrefresh.Store {
	var stores sync.Map
	return func(key string) authrefresh.Store {
		s, _ := stores.LoadOrStore(key, authrefresh.NewMemoryStore(nil))
		return s.(authrefresh.Store)
	}
}

// browser is a cookie-keeping client, as a browser is.
func browser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// login runs a login in the browser and returns the page it ends on.
func (w *world) login(t testing.TB, c *http.Client, returnURL string) string {
	t.Helper()
	resp, err := c.Get(w.bffURL + "/bff/login?returnUrl=" + url.QueryEscape(returnURL))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// call sends an app request the way the app's fetch does (with the CSRF
// header unless csrf is false) and decodes the JSON answer.
func (w *world) call(t *testing.T, c *http.Client, method, path string, csrf bool, header http.Header) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost && strings.HasPrefix(path, "/api/") {
		body = strings.NewReader(`{"name":"lamp","price":12}`)
	}
	req, _ := http.NewRequest(method, w.bffURL+path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set("X-CSRF", "1")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A login through the provider lands on the page it started from; the
// browser then holds only an HttpOnly session cookie; /bff/user tells who
// is logged in without a token; an API call carries the user's token
// upstream, and neither the browser's cookies nor the CSRF header, and the
// API's Set-Cookie never reaches the browser.
func TestLoginThenAPI(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	if page := w.login(t, c, "/orders?page=2"); page != "the app at /orders" {
		t.Fatalf("landed on %q", page)
	}
	u, _ := url.Parse(w.bffURL)
	cookies := c.Jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != "bff" || len(cookies[0].Value) < 40 {
		t.Fatalf("the browser's cookies: %v", cookies)
	}
	status, user := w.call(t, c, http.MethodGet, "/bff/user", true, nil)
	claims, _ := user["claims"].(map[string]any)
	if status != 200 || claims["sub"] != authserver.DemoUser || user["session_expires"] == nil {
		t.Fatalf("/bff/user: %d %v", status, user)
	}
	raw, _ := json.Marshal(user)
	if strings.Contains(string(raw), "access_token") || strings.Contains(string(raw), "eyJ") {
		t.Fatalf("/bff/user shows a token: %s", raw)
	}
	status, me := w.call(t, c, http.MethodGet, "/api/me", true, nil)
	if status != 200 || me["sub"] != authserver.DemoUser {
		t.Fatalf("/api/me: %d %v", status, me)
	}
	if status, created := w.call(t, c, http.MethodPost, "/api/data", true, nil); status != 201 || created["name"] != "lamp" {
		t.Fatalf("POST /api/data: %d %v", status, created)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.seen {
		if !strings.HasPrefix(h.Get("Authorization"), "Bearer ") || h.Get("Cookie") != "" || h.Get("X-Csrf") != "" {
			t.Fatalf("the upstream saw %v", h)
		}
	}
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "upstream" {
			t.Fatal("the API's cookie reached the browser")
		}
	}
}

// What a page of another site can send is refused before anything
// reaches the API: no CSRF header (a form post, fetch in no-cors mode, a
// link), a cross-site Sec-Fetch-Site, another Origin.
func TestCrossSiteRefused(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	w.login(t, c, "/")
	before := w.calls.Load()
	for name, tc := range map[string]struct {
		method string
		csrf   bool
		header http.Header
	}{
		"a form post without the header":      {http.MethodPost, false, http.Header{"Origin": {"http://127.0.0.2:9999"}, "Sec-Fetch-Site": {"cross-site"}}},
		"a cross-site GET (a link, an image)": {http.MethodGet, false, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		"the header, but from another site":   {http.MethodPost, true, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		"the header, from another origin":     {http.MethodPost, true, http.Header{"Origin": {"http://127.0.0.2:9999"}}},
		"the header, from a sibling site":     {http.MethodGet, true, http.Header{"Sec-Fetch-Site": {"same-site"}}},
	} {
		if status, out := w.call(t, c, tc.method, "/api/data", tc.csrf, tc.header); status != 403 {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	for _, path := range []string{"/bff/user", "/bff/logout"} {
		if status, _ := w.call(t, c, http.MethodPost, path, false, nil); status != 403 && status != 405 {
			t.Errorf("%s without the header: %d", path, status)
		}
	}
	if n := w.calls.Load() - before; n != 0 {
		t.Fatalf("%d requests reached the upstream", n)
	}
}

// No session, or a login that is not this browser's: a 401 or 400 JSON
// answer, never a redirect; a return URL to another host is refused.
func TestRefusals(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	if status, out := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 401 || out["error"] != "not_logged_in" {
		t.Fatalf("no session: %d %v", status, out)
	}
	for _, ret := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "evil", "/%2F%2Fevil.example", "/%2Fevil.example%20"} {
		resp, err := c.Get(w.bffURL + "/bff/login?returnUrl=" + url.QueryEscape(ret))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("returnUrl %q: %d", ret, resp.StatusCode)
		}
	}
	// A callback this browser did not start (another's state, or none).
	noRedirect := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(w.bffURL + "/bff/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	state := loc.Query().Get("state")
	other := browser(t)
	for name, cl := range map[string]*http.Client{"another browser": other, "this browser, forged state": c} {
		s := state
		if cl == c {
			s = "forged"
		}
		status, out := w.call(t, cl, http.MethodGet, "/bff/callback?code=x&state="+s, false, nil)
		if status != 400 {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
}

// Every login makes a new session id (no fixation); logout revokes at the
// provider and ends the session: the next call is 401.
func TestNewSessionPerLoginAndLogout(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	u, _ := url.Parse(w.bffURL)
	w.login(t, c, "/")
	first := c.Jar.Cookies(u)[0].Value
	w.login(t, c, "/")
	if second := c.Jar.Cookies(u)[0].Value; second == first {
		t.Fatal("a new login kept the session id")
	}
	if status, out := w.call(t, c, http.MethodPost, "/bff/logout", true, nil); status != 200 || out["logged_out"] != true {
		t.Fatalf("logout: %d %v", status, out)
	}
	if status, _ := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 401 {
		t.Fatalf("after logout: %d", status)
	}
	if n := w.provider.Counters().Revocations; n != 2 {
		t.Fatalf("%d revocations; want 2 (the replaced session, the logged-out one)", n)
	}
}

// 50 parallel calls from the page when the provider refuses every access
// token: all 200, one refresh at the provider.
func TestParallelCallsOneRefresh(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	w.login(t, c, "/")
	w.provider.RevokeAccessTokens()
	w.fiftyCallsOneRefresh(t, func(int) int {
		status, _ := w.call(t, c, http.MethodGet, "/api/me", true, nil)
		return status
	})
}

// fiftyCallsOneRefresh makes 50 calls at once (call(i) answers the status
// of the i-th) after the provider refused every access token: all must be
// 200, with one refresh at the provider.
func (w *world) fiftyCallsOneRefresh(t *testing.T, call func(i int) int) {
	t.Helper()
	before := w.provider.Counters().Refreshes
	var wg sync.WaitGroup
	statuses := make([]int, 50)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = call(i)
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Fatalf("call %d: %d", i, s)
		}
	}
	if n := w.provider.Counters().Refreshes - before; n != 1 {
		t.Fatalf("%d refreshes for 50 calls; want 1", n)
	}
}

// A session unused for longer than IdleTimeout ends: 401, not a redirect.
func TestIdleSessionEnds(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	w.login(t, c, "/")
	w.now.Add(int64(11 * time.Minute))
	if status, out := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 401 {
		t.Fatalf("after 11 idle minutes: %d %v", status, out)
	}
}

// as sends an app request to the BFF at base with the session cookie
// value id (as a browser does to whichever replica serves its origin).
func as(t *testing.T, base, id, method, path string) int {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Cookie", "bff="+id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Two replicas on one sealed session directory: a session logged in on
// one is served by the other; 50 parallel calls split between them after
// the provider refused every access token cost one refresh; a logout on
// one ends the session on the other within a second; a BFF started anew
// on the directory keeps the sessions; the files hold no token in clear.
func TestReplicasShareSessions(t *testing.T) {
	dir, keyring := t.TempDir(), authtest.Keyring(t, "k1")
	w := newWorld(t, fileStores(dir, keyring))
	other, _ := w.replica(t)
	c := browser(t)
	w.login(t, c, "/")
	u, _ := url.Parse(w.bffURL)
	id := c.Jar.Cookies(u)[0].Value
	if status := as(t, other, id, http.MethodGet, "/api/me"); status != 200 {
		t.Fatalf("the other replica: %d", status)
	}
	w.provider.RevokeAccessTokens()
	w.fiftyCallsOneRefresh(t, func(i int) int {
		return as(t, map[bool]string{true: w.bffURL, false: other}[i%2 == 0], id, http.MethodGet, "/api/me")
	})
	restarted, _ := w.replica(t)
	if status := as(t, restarted, id, http.MethodGet, "/api/me"); status != 200 {
		t.Fatalf("after a restart: %d", status)
	}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		data, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		if strings.Contains(string(data), "refresh_token") || strings.Contains(string(data), "eyJ") {
			t.Fatalf("%s holds a token in clear", f.Name())
		}
	}
	if status := as(t, w.bffURL, id, http.MethodPost, "/bff/logout"); status != 200 {
		t.Fatalf("logout: %d", status)
	}
	w.now.Add(int64(2 * time.Second))
	for _, base := range []string{other, restarted} {
		if status := as(t, base, id, http.MethodGet, "/api/me"); status != 401 {
			t.Fatalf("a replica two seconds after the logout: %d", status)
		}
	}
}

// The refresh token revoked at the provider (the user logged out
// elsewhere): the app's next call gets 401 once with session_expired, the
// session is over (the call after is plain not_logged_in), and the BFF
// asked the provider once — nothing loops.
func TestRevokedAtProviderEndsOnce(t *testing.T) {
	var mu sync.Mutex
	stores := map[string]*authrefresh.MemoryStore{}
	w := newWorld(t, func(key string) authrefresh.Store {
		mu.Lock()
		defer mu.Unlock()
		if stores[key] == nil {
			stores[key] = authrefresh.NewMemoryStore(nil)
		}
		return stores[key]
	})
	c := browser(t)
	w.login(t, c, "/")
	mu.Lock()
	var refresh string
	for key, s := range stores {
		if tok, _ := s.Load(context.Background()); tok != nil && tok.RefreshToken != "" && !strings.HasPrefix(key, "session:") {
			refresh = tok.RefreshToken
		}
	}
	mu.Unlock()
	if refresh == "" || !w.provider.RevokeRefreshToken(refresh) {
		t.Fatal("no refresh token to revoke")
	}
	w.provider.RevokeAccessTokens()
	before := w.provider.Counters().RefreshFailures
	if status, out := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 401 || out["error"] != "session_expired" {
		t.Fatalf("the first call: %d %v", status, out)
	}
	if status, out := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 401 || out["error"] != "not_logged_in" {
		t.Fatalf("the next call: %d %v", status, out)
	}
	if n := w.provider.Counters().RefreshFailures - before; n != 1 {
		t.Fatalf("%d refresh attempts at the provider; want 1", n)
	}
}

// A login started on one replica and come back to another (a load
// balancer sends each request where it likes) completes: what the
// callback needs travels in the browser's login cookie, sealed under a key
// the replicas share through their store. A replica started afterwards
// completes a login begun before it existed, and a login cookie from
// another store's BFF is refused.
func TestLoginAcrossReplicas(t *testing.T) {
	w := newWorld(t, fileStores(t.TempDir(), nil))
	other, _ := w.replicaOf(t, w.bffURL)
	c := browser(t)
	// The provider sends the browser back to the first replica's callback;
	// the balancer hands it to the other.
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), w.bffURL+"/bff/callback") {
			u, _ := url.Parse(other)
			req.URL.Host = u.Host
		}
		return nil
	}
	if page := w.login(t, c, "/orders"); page != "the app at /orders" {
		t.Fatalf("the login across replicas ended on %q", page)
	}
	if status, out := w.call(t, c, http.MethodGet, "/bff/user", true, nil); status != 200 || out["claims"] == nil {
		t.Fatalf("/bff/user after it: %d %v", status, out)
	}

	// Begun here, completed by a replica started since.
	c = browser(t)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.Path, "/bff/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(w.bffURL + "/bff/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	later, _ := w.replicaOf(t, w.bffURL)
	u, _ := url.Parse(later)
	cb, _ := url.Parse(callback)
	cb.Host = u.Host
	c.CheckRedirect = nil
	resp, err = c.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "the app at /" {
		t.Fatalf("the callback on a replica started since: %d %s", resp.StatusCode, body)
	}

	// A BFF on other stores (another key) refuses this browser's login cookie.
	stranger := newWorld(t, fileStores(t.TempDir(), nil))
	c = browser(t)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.Path, "/bff/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err = c.Get(w.bffURL + "/bff/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, _ = url.Parse(resp.Header.Get("Location"))
	u, _ = url.Parse(stranger.bffURL)
	cb.Host = u.Host
	resp, err = c.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "login_expired") {
		t.Fatalf("another BFF's login cookie: %d %s", resp.StatusCode, body)
	}
}

// Logging out as the app does: a navigation to the logout URL /bff/user
// gives (a per-session value in it, which a cross-site page cannot know)
// ends the session and sends the browser to the provider's end-session
// endpoint with the ID token as id_token_hint, in a redirect the page's
// JavaScript never reads; a wrong value ends nothing. No answer the
// page's JavaScript can read holds the ID token, the POST /bff/logout one
// included.
func TestLogoutNavigation(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	w.login(t, c, "/")
	status, user := w.call(t, c, http.MethodGet, "/bff/user", true, nil)
	logout, _ := user["logout_url"].(string)
	if status != 200 || !strings.HasPrefix(logout, "/bff/logout?sid=") {
		t.Fatalf("/bff/user: %d %v", status, user)
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, forged := range []string{"/bff/logout?sid=" + strings.Repeat("0", 32), "/bff/logout", "/bff/logout?sid=" + logout[len("/bff/logout?sid="):] + "x"} {
		resp, err := c.Get(w.bffURL + forged)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("GET %s: %d", forged, resp.StatusCode)
		}
	}
	if status, _ := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 200 {
		t.Fatalf("after forged logouts: %d", status)
	}
	resp, err := c.Get(w.bffURL + logout)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || to.Path != "/oauth/end-session" || !strings.HasPrefix(to.Query().Get("id_token_hint"), "eyJ") ||
		to.Query().Get("post_logout_redirect_uri") != w.bffURL+"/" {
		t.Fatalf("the logout navigation: %d to %s", resp.StatusCode, to)
	}
	if status, _ := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 401 || w.provider.Counters().Revocations != 1 {
		t.Fatalf("after the logout: %d, %d revocations", status, w.provider.Counters().Revocations)
	}

	c.CheckRedirect = nil
	w.login(t, c, "/")
	req, _ := http.NewRequest(http.MethodPost, w.bffURL+"/bff/logout", nil)
	req.Header.Set("X-CSRF", "1")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(body), "eyJ") || !strings.Contains(string(body), "logout_url") {
		t.Fatalf("POST /bff/logout: %d %s", resp.StatusCode, body)
	}
}

// The idle timeout counts from the session's last use on any replica: a
// session used every 5 minutes through one replica for 40 minutes is still
// live on another that last saw it at the start, and a session left idle
// longer than the timeout is over on a replica started since, which never
// saw it.
func TestIdleCountsAcrossReplicas(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, fileStores(dir, nil))
	other, _ := w.replica(t)
	c := browser(t)
	w.login(t, c, "/")
	u, _ := url.Parse(w.bffURL)
	id := c.Jar.Cookies(u)[0].Value
	if status := as(t, other, id, http.MethodGet, "/api/me"); status != 200 {
		t.Fatalf("the other replica at the start: %d", status)
	}
	for i := range 8 {
		w.now.Add(int64(5 * time.Minute))
		if status := as(t, w.bffURL, id, http.MethodGet, "/api/me"); status != 200 {
			t.Fatalf("use %d, through the first replica: %d", i, status)
		}
	}
	if status := as(t, other, id, http.MethodGet, "/api/me"); status != 200 {
		t.Fatalf("the other replica, 40 minutes on, the session used 5 minutes ago: %d", status)
	}
	w.now.Add(int64(11 * time.Minute))
	later, _ := w.replica(t)
	if status := as(t, later, id, http.MethodGet, "/api/me"); status != 401 {
		t.Fatalf("a replica started since, after 11 idle minutes: %d", status)
	}
}

// Every route that attaches the user's token refuses a request without the
// CSRF header, whatever its method, even one that looks same-origin (no
// Origin, no Sec-Fetch-Site): a route forgotten by the check is how
// GHSA-4j63-5v5f-xcc4 came about. Nothing reaches an API; with the header,
// each goes through.
func TestEveryAPIRouteNeedsTheCSRFHeader(t *testing.T) {
	w := newWorld(t)
	up, _ := url.Parse(w.cfg.APIs[0].Upstream)
	w.cfg.APIs = append(w.cfg.APIs, bff.API{Prefix: "/other-api/", Upstream: up.String()})
	w.cfg.Store = memoryStores()
	base, _ := w.replicaOf(t, "")
	w.bffURL = base
	c := browser(t)
	w.login(t, c, "/")
	before := w.calls.Load()
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	for _, prefix := range []string{"/api/", "/other-api/"} {
		for _, m := range methods {
			if status, _ := w.call(t, c, m, prefix+"me", false, nil); status != 403 {
				t.Errorf("%s %sme without the header: %d", m, prefix, status)
			}
		}
	}
	if n := w.calls.Load() - before; n != 0 {
		t.Fatalf("%d requests without the header reached an API", n)
	}
	for _, prefix := range []string{"/api/", "/other-api/"} {
		if status, _ := w.call(t, c, http.MethodGet, prefix+"me", true, nil); status != 200 {
			t.Errorf("GET %sme with the header: %d", prefix, status)
		}
	}
}

// Hostile cookies get a clear refusal and end nothing: an oversized session
// cookie (64 KiB), one that names no session, an oversized or altered
// login cookie at the callback. The browser's real session lives on.
func TestHostileCookies(t *testing.T) {
	w := newWorld(t)
	c := browser(t)
	w.login(t, c, "/")
	for name, cookie := range map[string]string{
		"an oversized session cookie":    "bff=" + strings.Repeat("a", 64<<10),
		"a session cookie of no session": "bff=" + strings.Repeat("A", 43),
	} {
		status, out := w.call(t, http.DefaultClient, http.MethodGet, "/api/me", true, http.Header{"Cookie": {cookie}})
		if status != 401 || out["error"] != "not_logged_in" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	for name, cookie := range map[string]string{
		"an oversized login cookie": "bff-login=" + strings.Repeat("a", 8<<10),
		"an altered login cookie":   "bff-login=" + strings.Repeat("A", 200),
	} {
		status, out := w.call(t, http.DefaultClient, http.MethodGet, "/bff/callback?code=x&state=y", false, http.Header{"Cookie": {cookie}})
		if status != 400 || out["error"] != "login_expired" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	if status, _ := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 200 {
		t.Fatalf("the real session after them: %d", status)
	}
}

// downStore is a store that fails while down is set.
type downStore struct {
	authrefresh.Store
	down *atomic.Bool
}

func (s downStore) Load(ctx context.Context) (*authrefresh.Token, error) {
	if s.down.Load() {
		return nil, errors.New("the store is down")
	}
	return s.Store.Load(ctx)
}

// While the sessions' store cannot be read, a replica that never saw a
// session answers 503 sessions_unavailable with Retry-After (not 401: the
// app must not send its user to log in), a logout keeps the cookie so that
// it can be tried again, and a replica that knows the session goes on
// serving it. The store back, everything works.
func TestStoreDown(t *testing.T) {
	var down atomic.Bool
	mem := memoryStores()
	w := newWorld(t, func(key string) authrefresh.Store { return downStore{mem(key), &down} })
	c := browser(t)
	w.login(t, c, "/")
	u, _ := url.Parse(w.bffURL)
	cookie := "bff=" + c.Jar.Cookies(u)[0].Value
	stranger, _ := w.replicaOf(t, w.bffURL) // never saw the session
	send := func(base, method, path string) *http.Response {
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	down.Store(true)
	for _, r := range []struct{ method, path string }{{"GET", "/api/me"}, {"GET", "/bff/user"}, {"POST", "/bff/logout"}} {
		resp := send(stranger, r.method, r.path)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s %s with the store down: %d, Retry-After %q, Set-Cookie %q; want 503, a Retry-After and the cookie kept",
				r.method, r.path, resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Set-Cookie"))
		}
	}
	if resp := send(w.bffURL, "GET", "/api/me"); resp.StatusCode != 200 {
		t.Errorf("the replica that knows the session, with the store down: %d", resp.StatusCode)
	}
	down.Store(false)
	if resp := send(stranger, "GET", "/api/me"); resp.StatusCode != 200 {
		t.Errorf("the store back: %d", resp.StatusCode)
	}
}
