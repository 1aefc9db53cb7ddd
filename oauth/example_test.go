package oauth_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/oauth"
)

// A user logs in through their browser: the authorization code grant with
// PKCE and a loopback redirect. Open would start a browser; here the
// "browser" follows the URL itself (the reference server approves its demo
// user without a page).
func ExampleBrowserLogin() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4, AutoApproveUser: authserver.DemoUser})
	idp := httptest.NewServer(server)
	defer idp.Close()
	ctx := context.Background()

	client := &oauth.Config{TokenURL: idp.URL + "/oauth/token", ClientID: authserver.DemoClientID,
		ClientSecret: authserver.DemoClientSecret, Scopes: []string{"openid"}}
	login := &oauth.BrowserLogin{Client: client, AuthURL: idp.URL + "/oauth/authorize",
		Open: func(_ context.Context, authURL string) error {
			// A real program opens the user's browser at authURL, or prints it.
			resp, err := http.Get(authURL)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}}
	tok, err := login.Login(ctx)
	if err != nil {
		panic(err)
	}
	session := authrefresh.NewSession(authrefresh.NewMemoryStore(nil), client, authrefresh.Options{})
	_ = session.Login(ctx, tok) // the same client refreshes it from now on
	fmt.Println("logged in; refresh token:", tok.RefreshToken != "", "ID token:", tok.IDToken != "")
	// Output: logged in; refresh token: true ID token: true
}

// A device without a browser: the user enters a code on another device.
// Show tells them where; here the reference server approves the code.
func ExampleDeviceLogin() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4, DeviceInterval: time.Second})
	idp := httptest.NewServer(server)
	defer idp.Close()

	login := &oauth.DeviceLogin{
		Client:        &oauth.Config{TokenURL: idp.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret},
		DeviceAuthURL: idp.URL + "/oauth/device_authorization",
		Show: func(_ context.Context, code oauth.DeviceCode) error {
			fmt.Printf("open %s and enter a %d-character code\n", strings.TrimPrefix(code.VerificationURI, idp.URL), len(code.UserCode))
			server.ApproveDevice(code.UserCode, authserver.DemoUser, false) // the user, elsewhere
			return nil
		}}
	tok, err := login.Login(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("logged in:", tok.AccessToken != "")
	// Output:
	// open /device and enter a 9-character code
	// logged in: true
}

// A service calls an API as itself: no user, no Login. The Session gets
// the first token on first use and the next one before it expires.
func ExampleClientCredentials() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	idp := httptest.NewServer(server)
	defer idp.Close()

	session := authrefresh.NewSession(nil, &oauth.ClientCredentials{
		TokenURL: idp.URL + "/oauth/token",
		ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret,
	}, authrefresh.Options{})
	client, _ := authrefresh.NewClient(idp.URL+"/api/v1/", session)
	var me struct{ Sub string }
	err := client.Get(context.Background(), "me", &me)
	fmt.Println(me.Sub, err, session.Stats().Refreshes)
	// Output: demo-client <nil> 1
}

// Discover reads a provider's metadata from its issuer URL; ClientAuthFor
// picks the client authentication the provider supports.
func ExampleDiscover() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	issuer := "http://" + ln.Addr().String()
	server, _ := authserver.New(authserver.Config{PasswordCost: 4, Issuer: issuer})
	idp := httptest.NewUnstartedServer(server)
	idp.Listener.Close()
	idp.Listener = ln
	idp.Start()
	defer idp.Close()

	md, err := oauth.Discover(context.Background(), nil, issuer)
	if err != nil {
		panic(err)
	}
	client := &oauth.Config{TokenURL: md.TokenEndpoint, RevocationURL: md.RevocationEndpoint,
		ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret,
		ClientAuth: md.ClientAuthFor(true)}
	fmt.Println(strings.TrimPrefix(client.TokenURL, issuer), strings.TrimPrefix(md.AuthorizationEndpoint, issuer))
	// Output: /oauth/token /oauth/authorize
}

// A DPoP proof for one request: the "DPoP" header that goes with a token
// bound to the key. Each request needs a proof of its own.
func ExampleDPoPKey() {
	key, err := oauth.NewDPoPKey() // keep it with the token: a bound token is useless without it
	if err != nil {
		panic(err)
	}
	proof, err := key.Proof(http.MethodGet, "https://api.example.com/v1/me?page=2", "the-access-token", "", time.Now())
	if err != nil {
		panic(err)
	}
	jkt, _ := key.Thumbprint()
	fmt.Println(strings.Count(proof, "."), len(jkt))
	// Output: 2 43
}

// Sender-constrained tokens: with a DPoP key on the Config, the server
// binds the tokens to it, and every request — token endpoint and API —
// carries a proof signed by it. The key travels with the token (in the
// store, sealed with it), so any process sharing the store can use it.
func ExampleConfig_dPoP() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4, DPoPNonce: true})
	idp := httptest.NewServer(server)
	defer idp.Close()
	ctx := context.Background()

	key, _ := oauth.NewDPoPKey() // a new key for each login
	client := &oauth.Config{TokenURL: idp.URL + "/oauth/token", ClientID: authserver.DemoClientID,
		ClientSecret: authserver.DemoClientSecret, DPoP: key}
	tok, err := client.PasswordLogin(ctx, authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		panic(err)
	}
	session := authrefresh.NewSession(nil, client, authrefresh.Options{})
	_ = session.Login(ctx, tok)
	api, _ := authrefresh.NewClient(idp.URL+"/api/v1/", session)
	var me struct{ Sub string }
	if err := api.Get(ctx, "me", &me); err != nil {
		panic(err)
	}
	fmt.Println(tok.TokenType, me.Sub)
	// Output: DPoP demo
}
