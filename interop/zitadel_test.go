package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/oauth"
)

var zitadelOP program

// startZitadel builds interop/zitadel-op (its own module: zitadel/oidc
// pinned in its go.mod) once, runs it and returns its issuer. Without the
// Go toolchain's module download it skips, unless AUTHREFRESH_REQUIRE_INTEROP=1.
func startZitadel(t *testing.T, env ...string) string {
	t.Helper()
	bin, err := zitadelOP.build("zitadel-op", func(out string) *exec.Cmd {
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Dir = "zitadel-op"
		return cmd
	})
	if err != nil {
		unavailable(t, err.Error())
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := server(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		var ready struct{ Issuer string }
		if json.Unmarshal(lines.Bytes(), &ready) == nil && ready.Issuer != "" {
			go io.Copy(io.Discard, out)
			return ready.Issuer
		}
	}
	t.Fatal("zitadel-op exited before listening")
	return ""
}

var hiddenID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// zitadelLogin is a headless BrowserLogin at zitadel's example OP: its
// login page is filled in and submitted as a user would.
func zitadelLogin(t *testing.T, md *oauth.ProviderMetadata, client *oauth.Config) *authrefresh.Token {
	t.Helper()
	b := &oauth.BrowserLogin{Client: client, AuthURL: md.AuthorizationEndpoint, Issuer: md.Issuer,
		Open: func(_ context.Context, u string) error {
			c := browser(t)
			page := visit(t, c, u)
			id := hiddenID.FindStringSubmatch(page)
			if id == nil {
				t.Errorf("no login form: %s", page)
				return nil
			}
			resp, err := c.PostForm(md.Issuer+"login/username", url.Values{"id": {id[1]}, "username": {"test-user"}, "password": {"verysecure"}})
			if err != nil {
				t.Errorf("logging in: %v", err)
				return nil
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "Logged in") {
				t.Errorf("after the login form: %d %s", resp.StatusCode, body)
			}
			return nil
		}}
	tok, err := b.Login(context.Background())
	if err != nil {
		t.Fatalf("browser login: %v", err)
	}
	return tok
}

// zitadel/oidc's example OP: discovery (an issuer with a trailing slash),
// browser login with PKCE on a free loopback port, rotation, 200 callers
// of userinfo over 3 lifetimes, its 403 for an expired token (refreshed and
// replayed with RetryStatuses 401 and 403), revocation ending the session
// once, client credentials, and device login through its own pages.
func TestZitadel(t *testing.T) {
	const ttl = 3 * time.Second
	issuer := startZitadel(t, "AT_TTL=3")
	ctx := context.Background()
	md, err := oauth.Discover(ctx, nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	grants := &grantCounter{}
	client := &oauth.Config{TokenURL: md.TokenEndpoint, RevocationURL: md.RevocationEndpoint, ClientID: "native",
		Scopes: []string{"openid", "offline_access"}, HTTPClient: &http.Client{Transport: grants, Timeout: 10 * time.Second}}

	t.Run("browser login, rotation, load", func(t *testing.T) {
		tok := zitadelLogin(t, md, client)
		if tok.RefreshToken == "" || tok.IDToken == "" || tok.ExpiresIn <= 0 || tok.ExpiresIn > ttl {
			t.Fatalf("token %+v, expires in %v", tok, tok.ExpiresIn)
		}
		s := authrefresh.NewSession(nil, client, authrefresh.Options{})
		s.Login(ctx, tok)
		base := &http.Transport{MaxIdleConnsPerHost: 200}
		defer base.CloseIdleConnections()
		api := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base, RetryStatuses: []int{401, 403}}, Timeout: 30 * time.Second} // a provider under -race can hold a request for seconds
		r := callUnderLoad(api, md.UserinfoEndpoint, 200, 3*ttl+ttl/2)
		// zitadel rounds expires_in down (2 s for 3-s tokens), and
		// refresh-ahead counts from what it was told.
		checkLoad(t, "zitadel", r, grants.count("refresh_token"), tok.ExpiresIn)

		// An expired token, refresh-ahead out of the way: zitadel answers
		// 403 with no WWW-Authenticate. With 403 among the retry statuses the
		// call is refreshed and replayed; without, the 403 is the answer.
		stale := authrefresh.NewSession(nil, client, authrefresh.Options{RefreshAhead: -1})
		cur, _ := s.Token(ctx)
		lapsed := *cur
		lapsed.Expiry = time.Now().Add(time.Hour) // what a skewed clock would believe
		stale.Login(ctx, &lapsed)
		// The provider's clock: a wait, not a synchronisation. Its expires_in
		// is rounded down to whole seconds, so the token lives up to a second
		// past the expiry the Session counted.
		time.Sleep(time.Until(cur.IssuedAt.Add(ttl)) + 200*time.Millisecond)
		plain := &http.Client{Transport: &authrefresh.Transport{Session: stale}}
		if resp, err := plain.Get(md.UserinfoEndpoint); err != nil || resp.StatusCode != 403 {
			t.Fatalf("an expired token with the default statuses: %v %v", err, statusErr(resp))
		} else {
			resp.Body.Close()
		}
		with403 := &http.Client{Transport: &authrefresh.Transport{Session: stale, RetryStatuses: []int{401, 403}}}
		if resp, err := with403.Get(md.UserinfoEndpoint); err != nil || resp.StatusCode != 200 {
			t.Fatalf("an expired token with 403 retried: %v %v", err, statusErr(resp))
		} else {
			resp.Body.Close()
		}

		// Revoked at the provider: 50 concurrent refreshes, one session end.
		cur, _ = stale.Token(ctx)
		endsOnceAfterRevocation(t, client, cur, client)
	})

	t.Run("client credentials", func(t *testing.T) {
		count := &counting{path: strings.TrimPrefix(md.TokenEndpoint, strings.TrimSuffix(issuer, "/"))}
		cc := &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "sid1", ClientSecret: "verysecret",
			ClientAuth: md.ClientAuthFor(true), Scopes: []string{"openid"}, HTTPClient: &http.Client{Transport: count}}
		s := authrefresh.NewSession(nil, cc, authrefresh.Options{})
		toks := make(chan *authrefresh.Token, 40)
		for range 40 {
			go func() { tok, _ := s.Token(ctx); toks <- tok }()
		}
		var first *authrefresh.Token
		for range 40 {
			tok := <-toks
			if tok == nil || (first != nil && tok.AccessToken != first.AccessToken) {
				t.Fatalf("token %v", tok)
			}
			first = tok
		}
		if count.n.Load() != 1 {
			t.Fatalf("%d token requests for 40 callers", count.n.Load())
		}
		bad := authrefresh.NewSession(nil, &oauth.ClientCredentials{TokenURL: md.TokenEndpoint, ClientID: "sid1", ClientSecret: "wrong"}, authrefresh.Options{})
		if _, err := bad.Token(ctx); !errors.Is(err, authrefresh.ErrRefreshMisconfigured) {
			t.Fatalf("a wrong secret: %v", err)
		}
	})

	t.Run("device login", func(t *testing.T) {
		d := &oauth.DeviceLogin{Client: &oauth.Config{TokenURL: md.TokenEndpoint, ClientID: "device", ClientSecret: "secret", Scopes: []string{"openid"}},
			DeviceAuthURL: md.DeviceAuthorizationEndpoint,
			Show: func(_ context.Context, code oauth.DeviceCode) error {
				c := browser(t)
				resp, err := c.PostForm(md.Issuer+"device/login", url.Values{"user_code": {code.UserCode}, "username": {"test-user"}, "password": {"verysecure"}})
				if err == nil {
					resp.Body.Close()
					resp, err = c.PostForm(md.Issuer+"device/confirm", url.Values{"action": {"allowed"}})
				}
				if err != nil {
					t.Errorf("approving: %v", err)
					return nil
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(body), "allowed") {
					t.Errorf("approval page: %s", body)
				}
				return nil
			}}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		tok, err := d.Login(ctx)
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("device login: %v", err)
		}
	})
}
