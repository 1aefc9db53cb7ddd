package oauth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/oauth"
	"golang.org/x/oauth2"
)

// dpopServer is a reference server that requires DPoP nonces, with a
// public client "cli" beside the demo's confidential one.
func dpopServer(t *testing.T) *authtest.Server {
	t.Helper()
	return authtest.StartRealClock(t, authserver.Config{
		DPoPNonce: true,
		Clients:   map[string]string{authserver.DemoClientID: authserver.DemoClientSecret, "cli": ""},
	})
}

// dpopLogin logs the demo user in as the public client with a new key and
// returns the Config and the token.
func dpopLogin(t *testing.T, e *authtest.Server) (*oauth.Config, *authrefresh.Token) {
	t.Helper()
	key, err := oauth.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli", DPoP: key, RevocationURL: e.URL + "/oauth/revoke"}
	tok, err := c.PasswordLogin(context.Background(), authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	return c, tok
}

// A login with a DPoP key gets a bound token that carries its key; every
// request then goes with a proof, never as a bearer token; the server's
// nonce costs one retry at the token endpoint and one at the API, neither
// a refresh; no proof is ever reused.
func TestDPoPEndToEnd(t *testing.T) {
	e := dpopServer(t)
	ctx := context.Background()
	c, tok := dpopLogin(t, e)
	if tok.TokenType != "DPoP" || len(tok.DPoPKey) == 0 {
		t.Fatalf("token type %q, key carried: %v", tok.TokenType, len(tok.DPoPKey) > 0)
	}
	if strings.Contains(tok.String(), `"d"`) || !strings.Contains(tok.String(), "dpop_key=[REDACTED]") {
		t.Fatalf("the key is printed: %s", tok)
	}
	s := authrefresh.NewSession(nil, c, authrefresh.Options{})
	if err := s.Login(ctx, tok); err != nil {
		t.Fatal(err)
	}
	api := e.Client(s)
	for i := range 3 {
		var me map[string]any
		if err := api.Get(ctx, "me", &me); err != nil || me["sub"] != authserver.DemoUser {
			t.Fatalf("call %d: %v %v", i, me, err)
		}
	}
	// A body goes out again intact after the API asks for its new nonce.
	e.Auth.RotateDPoPNonce()
	var created map[string]any
	if err := api.Post(ctx, "data", map[string]any{"name": "lamp", "price": 12}, &created); err != nil || created["name"] != "lamp" {
		t.Fatalf("post after a nonce rotation: %v %v", created, err)
	}
	// A refusal of the token: refreshed with a proof by the same key, and
	// the request replayed with a new proof.
	e.Auth.RevokeAccessTokens()
	if err := api.Get(ctx, "me", nil); err != nil {
		t.Fatal(err)
	}
	got := e.Auth.Counters()
	if st := s.Stats(); st.Refreshes != 1 {
		t.Fatalf("%d refreshes; want 1 (nonce retries are not refreshes)", st.Refreshes)
	}
	if got.DPoPReplays != 0 || got.DPoPBadProofs != 0 || got.DPoPKeyMismatch != 0 || got.Unauthorized["dpop_proof"] != 0 || got.Unauthorized["dpop_bound"] != 0 {
		t.Fatalf("counters %+v", got)
	}
	// One ask per endpoint per nonce: the first, and the rotated one.
	if got.DPoPNonceAsks != 2 || got.Unauthorized["dpop_nonce"] != 2 {
		t.Fatalf("nonce asks: token endpoint %d, API %d; want 2 each (the first nonce, the rotation)", got.DPoPNonceAsks, got.Unauthorized["dpop_nonce"])
	}
	// Accepted: the login's and the refresh's at the token endpoint; the
	// API's five calls' (the refused token's proof is not looked at).
	if got.DPoPProofs != 2+5 {
		t.Fatalf("%d proofs accepted", got.DPoPProofs)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatalf("revoking a bound refresh token: %v", err)
	}
}

// A bound token is never sent as a bearer token: without a Prover the
// request fails before it leaves.
func TestDPoPTokenNeverBearer(t *testing.T) {
	e := dpopServer(t)
	_, tok := dpopLogin(t, e)
	s := authrefresh.NewSession(nil, e.Refresher(), authrefresh.Options{}) // a jsonauth.Refresher signs no proofs
	if err := s.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	before := e.Auth.Counters().Requests["/api/v1/me"]
	if err := e.Client(s).Get(context.Background(), "me", nil); !errors.Is(err, authrefresh.ErrNoProver) {
		t.Fatalf("got %v; want ErrNoProver", err)
	}
	if n := e.Auth.Counters().Requests["/api/v1/me"] - before; n != 0 {
		t.Fatalf("%d requests reached the API", n)
	}
}

// The server refuses a bound token sent as a bearer token, and a public
// client's refresh token presented with another key — without rotating
// it, so the right key still refreshes.
func TestDPoPBindingEnforced(t *testing.T) {
	e := dpopServer(t)
	ctx := context.Background()
	c, tok := dpopLogin(t, e)
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || e.Auth.Counters().Unauthorized["dpop_bound"] != 1 {
		t.Fatalf("a bound token as bearer: %d", resp.StatusCode)
	}
	other, _ := oauth.NewDPoPKey()
	thief := &oauth.Config{TokenURL: c.TokenURL, ClientID: "cli", DPoP: other}
	stolen := *tok
	stolen.DPoPKey = nil
	if _, err := thief.Refresh(ctx, &stolen); !errors.Is(err, authrefresh.ErrRefreshRejected) || e.Auth.Counters().DPoPKeyMismatch != 1 {
		t.Fatalf("refresh with another key: %v", err)
	}
	// Neither is a process of the fleet that configured no key at all: the
	// token carries its own.
	fleet := &oauth.Config{TokenURL: c.TokenURL, ClientID: "cli"}
	next, err := fleet.Refresh(ctx, tok)
	if err != nil || next.TokenType != "DPoP" {
		t.Fatalf("refresh with the token's own key: %v %v", next, err)
	}
}

// Every key type signs proofs the server accepts, and a token carries it
// so that another process refreshes with the same key.
func TestDPoPKeyTypes(t *testing.T) {
	e := dpopServer(t)
	ctx := context.Background()
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, key := range []*oauth.DPoPKey{{Signer: ec384}, {Signer: rsaKey}, {Signer: rsaKey, Algorithm: "PS256"}, {Signer: edKey}} {
		c := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli", DPoP: key}
		tok, err := c.PasswordLogin(ctx, authserver.DemoUser, authserver.DemoPassword)
		if err != nil {
			t.Fatalf("%T %s: %v", key.Signer, key.Algorithm, err)
		}
		other := &oauth.Config{TokenURL: c.TokenURL, ClientID: "cli"}
		if _, err := other.Refresh(ctx, tok); err != nil {
			t.Fatalf("%T %s: refresh from the stored key: %v", key.Signer, key.Algorithm, err)
		}
	}
	if n := e.Auth.Counters().DPoPBadProofs; n != 0 {
		t.Fatalf("%d proofs refused", n)
	}
}

// A nonce retry at the token endpoint signs a new client assertion: the
// server refuses an assertion it has seen.
func TestDPoPNonceRetryNewAssertion(t *testing.T) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e := authtest.StartRealClock(t, authserver.Config{DPoPNonce: true, ClientKeys: map[string]crypto.PublicKey{"keyed": signer.Public()}})
	key, _ := oauth.NewDPoPKey()
	c := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "keyed", Key: &oauth.ClientKey{Signer: signer}, DPoP: key}
	tok, err := c.PasswordLogin(context.Background(), authserver.DemoUser, authserver.DemoPassword)
	if err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("%v %v", tok, err)
	}
	if n := e.Auth.Counters().DPoPNonceAsks; n != 1 {
		t.Fatalf("%d nonce asks; want 1", n)
	}
}

// Client credentials with DPoP: bound tokens, a proof per request.
func TestDPoPClientCredentials(t *testing.T) {
	e := dpopServer(t)
	key, _ := oauth.NewDPoPKey()
	cc := &oauth.ClientCredentials{TokenURL: e.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, DPoP: key}
	s := authrefresh.NewSession(nil, cc, authrefresh.Options{})
	var calls atomic.Int64
	for range 3 {
		if err := e.Client(s).Get(context.Background(), "me", nil); err != nil {
			t.Fatal(err)
		}
		calls.Add(1)
	}
	if got := e.Auth.Counters(); got.ClientTokens != 1 || got.DPoPProofs != 1+3 || got.Unauthorized["dpop_nonce"] != 1 {
		t.Fatalf("counters %+v", got)
	}
}

// A fleet (three Sessions, each with its own Config that names no key, as
// three processes would) shares one sealed token file holding a public
// client's DPoP-bound, rotating refresh token: each time the server
// refuses every access token, the fleet refreshes once, with the key that
// travels in the file; nothing is refused for its key, no proof is
// replayed, and the file holds no key in the clear.
func TestDPoPFleetSharesTheKey(t *testing.T) {
	e := authtest.StartRealClock(t, authserver.Config{DPoPNonce: true, AccessTTL: time.Hour, Clients: map[string]string{"cli": ""}})
	ctx := context.Background()
	_, tok := dpopLogin(t, e)
	path := filepath.Join(t.TempDir(), "token.json")
	keyring := authtest.Keyring(t, "k1")
	var fleet []*authrefresh.Client
	for i := range 3 {
		c := &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli"}
		s := authrefresh.NewSession(&filestore.Store{Path: path, Keyring: keyring}, c, authrefresh.Options{})
		if i == 0 {
			if err := s.Login(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		fleet = append(fleet, e.Client(s))
	}
	const rounds, callers = 3, 30
	for round := range rounds {
		e.Auth.RevokeAccessTokens()
		errs := authtest.RunParallel(len(fleet)*callers, func(i int) error {
			return fleet[i%len(fleet)].Get(ctx, "me", nil)
		})
		if n, first := authtest.CountErrors(errs); n > 0 {
			t.Fatalf("round %d: %d calls failed; first: %v", round, n, first)
		}
	}
	got := e.Auth.Counters()
	if got.Refreshes != rounds || got.RefreshFailures != 0 || got.DPoPKeyMismatch != 0 || got.DPoPReplays != 0 || got.DPoPBadProofs != 0 {
		t.Fatalf("%d refreshes for %d rounds; counters %+v", got.Refreshes, rounds, got)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("dpop_key")) || bytes.Contains(raw, tok.DPoPKey[:20]) {
		t.Fatal("the key is in the file in the clear")
	}
}

// A browser login with a DPoP key binds the authorization code to it
// (dpop_jkt, RFC 9449 §10): the login gets bound tokens, and a code
// intercepted on its way back cannot be exchanged with another key.
func TestDPoPBrowserLoginBindsTheCode(t *testing.T) {
	e := authtest.StartRealClock(t, authserver.Config{DPoPNonce: true, AutoApproveUser: authserver.DemoUser, Clients: map[string]string{"cli": ""}})
	key, _ := oauth.NewDPoPKey()
	jkt, _ := key.Thumbprint()
	var sent url.Values
	b := &oauth.BrowserLogin{Client: &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli", DPoP: key}, AuthURL: e.URL + "/oauth/authorize",
		Open: func(_ context.Context, u string) error {
			parsed, _ := url.Parse(u)
			sent = parsed.Query()
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}}
	tok, err := b.Login(context.Background())
	if err != nil || tok.TokenType != "DPoP" || sent.Get("dpop_jkt") != jkt {
		t.Fatalf("login: %v %v; dpop_jkt %q, want %q", tok, err, sent.Get("dpop_jkt"), jkt)
	}

	// The code, intercepted: its exchange signed by another key.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := oauth2.GenerateVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "state": {"s"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}, "dpop_jkt": {jkt}}
	resp, err := noRedirect.Get(e.URL + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	code := loc.Query().Get("code")
	thief, _ := oauth.NewDPoPKey()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "code_verifier": {verifier}}
	proof, _ := thief.Proof(http.MethodPost, e.URL+"/oauth/token", "", e.Auth.DPoPNonce(), time.Now())
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Auth.Counters().DPoPKeyMismatch != 1 {
		t.Fatalf("an intercepted code with another key: %d", resp.StatusCode)
	}
}

// Nonce rotations under concurrent load: 50 callers through one Session,
// the server's nonce rotated between rounds; each rotation costs each
// caller at most one retry, and none is a refresh or a failure.
func TestDPoPNonceRotationUnderLoad(t *testing.T) {
	e := dpopServer(t)
	c, tok := dpopLogin(t, e)
	s := authrefresh.NewSession(nil, c, authrefresh.Options{})
	if err := s.Login(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	api := e.Client(s)
	const callers, rotations = 50, 3
	for round := range rotations + 1 {
		if round > 0 {
			e.Auth.RotateDPoPNonce()
		}
		errs := authtest.RunParallel(callers, func(int) error {
			for range 4 {
				if err := api.Get(context.Background(), "me", nil); err != nil {
					return err
				}
			}
			return nil
		})
		if n, first := authtest.CountErrors(errs); n > 0 {
			t.Fatalf("round %d: %d callers failed; first: %v", round, n, first)
		}
	}
	asks := e.Auth.Counters().Unauthorized["dpop_nonce"]
	t.Logf("%d nonce asks for %d callers over %d nonces", asks, callers, rotations+1)
	if asks > callers*(rotations+1) || asks < rotations+1 || s.Stats().Refreshes != 0 {
		t.Fatalf("%d nonce asks for %d callers and %d nonces (at most one each), %d refreshes", asks, callers, rotations+1, s.Stats().Refreshes)
	}
}

// A token request whose answer is lost after the server processed it (the
// connection closed) is sent once more at once — with a new DPoP proof
// and a new client assertion: the server refuses a jti it has seen. (With
// a rotation grace period, the resend gets the same tokens.)
func TestResendAfterLostAnswerSignsAnew(t *testing.T) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv, err := authserver.New(authserver.Config{DPoPNonce: true, GracePeriod: 10 * time.Second, PasswordCost: 4,
		Clients: map[string]string{"cli": ""}, ClientKeys: map[string]crypto.PublicKey{"keyed": signer.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	var lose atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" && lose.CompareAndSwap(true, false) {
			srv.ServeHTTP(httptest.NewRecorder(), r) // processed, then the answer is lost
			panic(http.ErrAbortHandler)
		}
		srv.ServeHTTP(w, r)
	}))
	defer hs.Close()
	ctx := context.Background()
	for name, c := range map[string]*oauth.Config{
		"a DPoP proof":       {TokenURL: hs.URL + "/oauth/token", ClientID: "cli"},
		"a client assertion": {TokenURL: hs.URL + "/oauth/token", ClientID: "keyed", Key: &oauth.ClientKey{Signer: signer}},
	} {
		key, _ := oauth.NewDPoPKey()
		c.DPoP = key
		tok, err := c.PasswordLogin(ctx, authserver.DemoUser, authserver.DemoPassword)
		if err != nil {
			t.Fatalf("%s: login: %v", name, err)
		}
		lose.Store(true)
		next, err := c.Refresh(ctx, tok)
		if err != nil || lose.Load() {
			t.Fatalf("%s: the resend after a lost answer: %v", name, err)
		}
		if next.AccessToken == tok.AccessToken {
			t.Fatalf("%s: no new token", name)
		}
	}
	if got := srv.Counters(); got.DPoPReplays != 0 || got.GraceReplays != 2 {
		t.Fatalf("%d proofs replayed, %d grace replays; want 0 and 2", got.DPoPReplays, got.GraceReplays)
	}
}
