package oauth_test

import (
	"context"
	"fmt"
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
