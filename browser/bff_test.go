package browser

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/oauth"
	"github.com/chromedp/chromedp"
)

// chromium is the browser's executable, or a skip (a failure under
// AUTHREFRESH_REQUIRE_BROWSER=1, as .ci/run sets after installing it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("AUTHREFRESH_CHROMIUM"), "/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("AUTHREFRESH_REQUIRE_BROWSER") == "1" {
		t.Fatal("no Chromium found and AUTHREFRESH_REQUIRE_BROWSER=1")
	}
	t.Skip("no Chromium here: apt-get install chromium (or set AUTHREFRESH_CHROMIUM)")
	return ""
}

// site is the reference server as provider and API, an upstream in front
// of its API that counts what reaches it, and a BFF serving the products
// app on 127.0.0.1.
type site struct {
	provider *authserver.Server
	origin   string
	calls    atomic.Int64
	mu       sync.Mutex
	bearer   string // the last access token the upstream saw
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{}
	srv, issuer := authtest.StartIssuer(t, authserver.Config{AutoApproveUser: authserver.DemoUser, AccessTTL: time.Hour})
	s.provider = srv
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		s.mu.Lock()
		s.bearer = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Unlock()
		r.URL.Path = "/api/v1" + r.URL.Path
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(upstream.Close)
	hs := httptest.NewUnstartedServer(nil)
	s.origin = "http://" + hs.Listener.Addr().String()
	app, err := bff.New(bff.Config{
		Provider: &oauth.ProviderMetadata{Issuer: issuer, AuthorizationEndpoint: issuer + "/oauth/authorize", TokenEndpoint: issuer + "/oauth/token", RevocationEndpoint: issuer + "/oauth/revoke"},
		Client:   oauth.Config{ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret},
		URL:      s.origin,
		APIs:     []bff.API{{Prefix: "/api/", Upstream: upstream.URL + "/"}},
		Static:   http.FileServer(http.Dir("../cmd/authrefresh/bffapp")),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = app
	hs.Start()
	t.Cleanup(hs.Close)
	return s
}

// fill types a product into the app's form, as a user would.
func fill(name, price string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('#create input[name="name"]').value = %q; document.querySelector('#create input[name="price"]').value = %q`, name, price))
}

// newBrowser is a headless Chromium for the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// The products app in Chromium, through the BFF: the login goes through
// the provider and back; creating a product shows the API's validation
// details, then the product; nothing JavaScript can read holds the access
// token; 50 parallel calls after the provider refused every access token
// all answer 200, with one refresh; logging out brings the login link
// back and the API then answers 401.
func TestProductsAppInChromium(t *testing.T) {
	s := newSite(t)
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.origin+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#products")),
	); err != nil {
		t.Fatal(err)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#who")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who, authserver.DemoUser) {
		t.Fatalf("signed in as %q", who)
	}

	if err := chromedp.Do(ctx,
		fill("", "cheap"),
		chromedp.Click(chromedp.CSS(`#create button`)),
		chromedp.WaitVisible(chromedp.CSS(`#errors div`)),
	); err != nil {
		t.Fatal(err)
	}
	errs, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#errors")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		fill("lamp", "12"),
		chromedp.Click(chromedp.CSS(`#create button`)),
		chromedp.WaitVisible(chromedp.CSS(`#products li`)),
	); err != nil {
		t.Fatal(err)
	}
	products, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#products")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errs, "name") || !strings.Contains(errs, "price") || !strings.Contains(products, "lamp") {
		t.Fatalf("validation details %q, products %q", errs, products)
	}
	if path := os.Getenv("AUTHREFRESH_SCREENSHOT"); path != "" {
		// The app as docs/bff.md shows it: AUTHREFRESH_SCREENSHOT=../docs/bff-app.png go test -run ProductsApp
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(720, 420)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil || os.WriteFile(path, png, 0o644) != nil {
			t.Fatalf("screenshot: %v", err)
		}
	}

	// Everything the page's JavaScript can see.
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const h = { 'X-CSRF': '1' };
		const user = await (await fetch('/bff/user', { headers: h })).text();
		const me = await (await fetch('/api/me', { headers: h })).text();
		const data = await (await fetch('/api/data', { headers: h })).text();
		return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage), user, me, data, document.documentElement.outerHTML].join('\n');
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	token := s.bearer
	s.mu.Unlock()
	if len(token) < 40 {
		t.Fatalf("the upstream saw no token: %q", token)
	}
	if sig := token[strings.LastIndexByte(token, '.')+1:]; strings.Contains(visible, token) || strings.Contains(visible, sig) {
		t.Fatal("the access token is visible to the page's JavaScript")
	}
	if strings.Contains(visible, "refresh") {
		t.Fatalf("something about a refresh token is visible: %.300s", visible)
	}

	s.provider.RevokeAccessTokens()
	before := s.provider.Counters().Refreshes
	statuses, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`Promise.all(Array.from({ length: 50 }, () => fetch('/api/me', { headers: { 'X-CSRF': '1' } }).then((r) => r.status)))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range statuses {
		if st != 200 {
			t.Fatalf("call %d of 50: %d", i, st)
		}
	}
	if n := s.provider.Counters().Refreshes - before; len(statuses) != 50 || n != 1 {
		t.Fatalf("%d calls, %d refreshes; want 50 and 1", len(statuses), n)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login"))); err != nil {
		t.Fatal(err)
	}
	after, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/api/me', { headers: { 'X-CSRF': '1' } }).then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if after != 401 || s.provider.Counters().Revocations != 1 {
		t.Fatalf("after logout: %d, %d revocations", after, s.provider.Counters().Revocations)
	}
}

// A page of another origin in the same browser, which holds the user's
// session: a form post, a fetch in no-cors mode, a fetch with the CSRF
// header (its preflight refused) and a fetch with credentials all fail to
// reach the API — its own counter does not move — and create nothing. On
// 127.0.0.2 (another site) the browser does not even send the SameSite
// cookie; on 127.0.0.1 at another port (the same site, another origin) it
// does, and the BFF's CSRF check is what refuses.
func TestCrossOriginPageRefused(t *testing.T) {
	for _, host := range []string{"127.0.0.2", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) { crossOriginPage(t, host) })
	}
}

func crossOriginPage(t *testing.T, host string) {
	s := newSite(t)
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.origin+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#products")),
	); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("%s is not a loopback address here: %v", host, err)
	}
	target := s.origin + "/api/data"
	attack := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="%[1]s" target="sink" enctype="text/plain"><input name='{"name":"evil","price":1,"x":"' value='"}'></form>
<script>
(async () => {
  const body = JSON.stringify({ name: 'evil', price: 1 });
  await fetch('%[1]s', { method: 'POST', mode: 'no-cors', credentials: 'include', body }).catch(() => {});
  await fetch('%[1]s', { method: 'POST', credentials: 'include', headers: { 'X-CSRF': '1', 'Content-Type': 'application/json' }, body }).catch(() => {});
  await fetch('%[1]s', { credentials: 'include' }).catch(() => {});
  document.querySelector('iframe').onload = () => { document.body.dataset.done = '1'; const d = document.createElement('p'); d.id = 'done'; document.body.append(d); };
  document.getElementById('f').submit();
})();
</script>`, target)
	}))
	attack.Listener.Close()
	attack.Listener = ln
	attack.Start()
	defer attack.Close()
	before := s.calls.Load()
	created := len(s.provider.Products())
	if err := chromedp.Do(ctx,
		chromedp.Navigate(attack.URL+"/"),
		chromedp.WaitReady(chromedp.CSS("#done")),
	); err != nil {
		t.Fatal(err)
	}
	if n := s.calls.Load() - before; n != 0 {
		t.Fatalf("%d requests of another origin reached the API", n)
	}
	if n := len(s.provider.Products()) - created; n != 0 {
		t.Fatalf("%d products created from another origin", n)
	}
}
