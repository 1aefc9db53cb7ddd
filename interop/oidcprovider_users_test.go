package interop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/oauth"
)

// browser is a headless browser: a cookie jar, and redirects followed
// (from the provider to its interactions and back, and on to the
// loopback redirect of a BrowserLogin).
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// visit GETs u and returns the final page.
func visit(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Errorf("visiting %s: %v", u, err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

var (
	formAction  = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// approveDevice does what the user does on another device: open the
// verification URI with the code, confirm the provider's form, and go
// through the (at once approved) login and consent.
func approveDevice(t *testing.T, code oauth.DeviceCode) {
	t.Helper()
	c := browser(t)
	page := visit(t, c, code.VerificationURIComplete)
	// The code's form, then its confirmation: each submitted as a user would.
	for range 3 {
		if strings.Contains(page, "device login approved") {
			return
		}
		action := formAction.FindStringSubmatch(page)
		if action == nil {
			break
		}
		fields := url.Values{}
		for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
			fields.Set(m[1], m[2])
		}
		target, _ := url.Parse(code.VerificationURI)
		act, _ := target.Parse(strings.ReplaceAll(action[1], "&amp;", "&"))
		resp, err := c.PostForm(act.String(), fields)
		if err != nil {
			t.Errorf("submitting the verification form: %v", err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(body)
	}
	t.Errorf("the device code was not approved; last page: %s", page)
}

// userClient is the provider's public native client, counting its token
// requests by grant.
func userClient(md *oauth.ProviderMetadata, grants *grantCounter) *oauth.Config {
	return &oauth.Config{TokenURL: md.TokenEndpoint, RevocationURL: md.RevocationEndpoint, ClientID: "cli",
		Scopes: []string{"openid", "api:read"}, HTTPClient: &http.Client{Transport: grants, Timeout: 10 * time.Second}}
}

// grantCounter counts token-endpoint requests by grant_type.
type grantCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (g *grantCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.GetBody != nil {
		body, _ := req.GetBody()
		data, _ := io.ReadAll(body)
		form, _ := url.ParseQuery(string(data))
		g.mu.Lock()
		if g.n == nil {
			g.n = map[string]int{}
		}
		g.n[form.Get("grant_type")]++
		g.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (g *grantCounter) count(grant string) int { g.mu.Lock(); defer g.mu.Unlock(); return g.n[grant] }

// loginInBrowser runs a BrowserLogin driven by the headless browser.
func loginInBrowser(t *testing.T, md *oauth.ProviderMetadata, client *oauth.Config) *authrefresh.Token {
	t.Helper()
	return loginInBrowserAt(t, md, client, "")
}

// loginInBrowserAt is loginInBrowser with a fixed redirect URI ("": any
// free port).
func loginInBrowserAt(t *testing.T, md *oauth.ProviderMetadata, client *oauth.Config, redirect string) *authrefresh.Token {
	t.Helper()
	b := &oauth.BrowserLogin{Client: client, AuthURL: md.AuthorizationEndpoint, Issuer: md.Issuer, RedirectURL: redirect,
		Open: func(_ context.Context, u string) error {
			if page := visit(t, browser(t), u); !strings.Contains(page, "Logged in") {
				t.Errorf("the page after the redirect: %s", page)
			}
			return nil
		}}
	tok, err := b.Login(context.Background())
	if err != nil {
		t.Fatalf("browser login: %v", err)
	}
	return tok
}

// Browser login against oidc-provider: code + PKCE through its real
// authorization endpoint and interactions, a loopback redirect on a free
// port, the ID token's nonce checked; the refresh token then rotates.
func TestOIDCProviderBrowserLogin(t *testing.T) {
	issuer := startOIDCProvider(t)
	md, err := oauth.Discover(context.Background(), nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	grants := &grantCounter{}
	client := userClient(md, grants)
	tok := loginInBrowser(t, md, client)
	if tok.RefreshToken == "" || tok.IDToken == "" || tok.ExpiresIn <= 0 || grants.count("authorization_code") != 1 {
		t.Fatalf("token %+v, grants %v", tok, grants.n)
	}
	s := authrefresh.NewSession(nil, client, authrefresh.Options{})
	if err := s.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	next, err := s.Refresh(context.Background())
	if err != nil || next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Fatalf("refresh after the browser login: %v (rotated: %v)", err, next != nil && next.RefreshToken != tok.RefreshToken)
	}
}

// Device login against oidc-provider: the code is approved through its
// own verification page while Login polls (at the default 5 s: the
// provider names no interval).
func TestOIDCProviderDeviceLogin(t *testing.T) {
	issuer := startOIDCProvider(t)
	md, err := oauth.Discover(context.Background(), nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	grants := &grantCounter{}
	d := &oauth.DeviceLogin{Client: userClient(md, grants), DeviceAuthURL: md.DeviceAuthorizationEndpoint,
		Show: func(_ context.Context, code oauth.DeviceCode) error { approveDevice(t, code); return nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := d.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.IDToken == "" || grants.count("urn:ietf:params:oauth:grant-type:device_code") != 1 {
		t.Fatalf("token %+v, polls %v", tok, grants.n)
	}
}

// 200 concurrent callers of the provider's userinfo endpoint through one
// Session for more than 3 access-token lifetimes: refreshes follow the
// expiries (never one per request), no refresh token is presented twice
// (the provider would revoke the grant: every later call would fail), no
// call fails. Then the refresh token is revoked at the provider: 50
// concurrent refreshes end the session exactly once.
//
// The tokens live 6 s: oidc-provider counts exp from the whole second it
// issued in, so a token ends 0 to 1 s before the expires_in the client
// counts. With 3-s tokens refresh-ahead (at 2.25 s) can come after the true
// end (as early as 2 s), and a request stalled in the provider's event loop
// under -race is then refused twice (3 of 18,000 calls, measured); from 5-s
// tokens on, refresh-ahead precedes the earliest end.
func TestOIDCProviderUserSessionUnderLoad(t *testing.T) {
	const ttl = 6 * time.Second
	issuer := startOIDCProvider(t, "AT_TTL=6")
	md, err := oauth.Discover(context.Background(), nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	grants := &grantCounter{}
	client := userClient(md, grants)
	tok := loginInBrowser(t, md, client)
	s := authrefresh.NewSession(nil, client, authrefresh.Options{})
	if err := s.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	base := &http.Transport{MaxIdleConnsPerHost: 200}
	defer base.CloseIdleConnections()
	api := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}, Timeout: 30 * time.Second} // a provider under -race can hold a request for seconds
	r := callUnderLoad(api, md.UserinfoEndpoint, 200, 3*ttl+ttl/2)
	checkLoad(t, "oidc-provider", r, grants.count("refresh_token"), tok.ExpiresIn)

	cur, _ := s.Token(context.Background())
	endsOnceAfterRevocation(t, client, cur, client)
}

type httpStatusError int

func (e httpStatusError) Error() string { return "status " + http.StatusText(int(e)) }

func statusErr(resp *http.Response) error {
	if resp == nil || resp.StatusCode == 200 {
		return nil
	}
	if challenge := resp.Header.Get("WWW-Authenticate"); challenge != "" {
		return fmt.Errorf("%w (%s)", httpStatusError(resp.StatusCode), challenge)
	}
	return httpStatusError(resp.StatusCode)
}
