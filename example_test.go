package authrefresh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/oauth"
	"github.com/authrefresh/authrefresh/seal"
)

// The whole flow of the seeds' axios instance: log in, then call the API with
// JSON; tokens are attached, refreshed ahead, and refreshed-and-replayed after
// a 401 without the caller noticing.
func Example() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()

	session := authrefresh.NewSession(
		authrefresh.NewMemoryStore(nil), // or filestore.New(path), or redisstore
		&jsonauth.Refresher{URL: api.URL + "/auth/refresh"},
		authrefresh.Options{OnSessionExpired: func(error) { fmt.Println("please log in again") }},
	)
	tok, err := jsonauth.Login(ctx, nil, api.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		panic(err)
	}
	if err := session.Login(ctx, tok); err != nil {
		panic(err)
	}

	client, _ := authrefresh.NewClient(api.URL+"/api/v1/", session)
	var created struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	server.RevokeAccessTokens() // the next request is refused once, refreshed, replayed
	err = client.Post(ctx, "data", map[string]any{"name": "Widget", "price": 9.99}, &created)
	fmt.Println(created.ID, created.Name, err, session.Stats().Refusals)

	err = client.Post(ctx, "data", map[string]any{"name": "", "price": -1}, nil)
	var apiErr *authrefresh.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Message, apiErr.Details["price"])
	}
	// Output:
	// 1 Widget <nil> 1
	// 400 invalid product must be a positive number
}

// A Transport makes any *http.Client authenticated.
func ExampleTransport() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()

	tok, _ := jsonauth.Login(ctx, nil, api.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	session := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: api.URL + "/auth/refresh"}, authrefresh.Options{})
	_ = session.Login(ctx, tok)

	hc := api.Client()
	hc.Transport = &authrefresh.Transport{Session: session, Base: hc.Transport, Origins: []string{api.URL}}
	resp, err := hc.Get(api.URL + "/api/v1/me")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// Sessions holds a Session per user; one http.Client serves them all, each
// request carrying the token of the user its context names.
func ExampleSessions() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4, Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"}})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()

	users := &authrefresh.Sessions{
		New: func(user string) (authrefresh.SessionSpec, error) {
			return authrefresh.SessionSpec{
				Store:     authrefresh.NewMemoryStore(nil), // or filestore.New(filepath.Join(dir, filestore.KeyFileName(user)))
				Refresher: &jsonauth.Refresher{URL: api.URL + "/auth/refresh"},
				Options:   authrefresh.Options{RefreshJitter: 0.1},
			}, nil
		},
		Origins: []string{api.URL},
	}
	for user, password := range map[string]string{"alice": "alice-pw", "bob": "bob-pw"} {
		tok, _ := jsonauth.Login(ctx, nil, api.URL+"/auth/login", user, password)
		_ = users.Login(ctx, user, tok)
	}
	hc := &http.Client{Transport: users}
	for _, user := range []string{"alice", "bob"} {
		req, _ := http.NewRequestWithContext(authrefresh.WithKey(ctx, user), http.MethodGet, api.URL+"/api/v1/me", nil)
		resp, err := hc.Do(req)
		if err != nil {
			panic(err)
		}
		var me struct{ Sub string }
		_ = json.NewDecoder(resp.Body).Decode(&me)
		resp.Body.Close()
		fmt.Println(user, "→", me.Sub)
	}
	// Output:
	// alice → alice
	// bob → bob
}

// A keyring seals tokens at rest: the file holds no token, and opens only
// with the keyring, under its own name.
func ExampleKeyring() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	line, _ := seal.NewKey("2026-12") // keep it in a 0600 file, or a secret manager
	keys, _ := seal.ParseKeyring(line)

	store := &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName("alice")), Keyring: keys}
	_ = store.Save(context.Background(), &authrefresh.Token{AccessToken: "secret-access", RefreshToken: "secret-refresh"})
	data, _ := os.ReadFile(store.Path)
	fmt.Println("token in the file:", strings.Contains(string(data), "secret"))
	tok, _ := store.Load(context.Background())
	fmt.Println("opened:", tok.RefreshToken)

	copied := &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName("mallory")), Keyring: keys}
	_ = os.WriteFile(copied.Path, data, 0o600)
	_, err := copied.Load(context.Background())
	var sealed *seal.Error
	fmt.Println("copied to another user opens:", !errors.As(err, &sealed))
	// Output:
	// token in the file: false
	// opened: secret-refresh
	// copied to another user opens: false
}

// A KeepAlive pass refreshes the keys whose tokens are older than MaxAge,
// so that users who went quiet keep their connections.
func ExampleKeepAlive() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()
	limit := authrefresh.NewRefreshLimit(4) // toward this token endpoint, for every key
	users := &authrefresh.Sessions{New: func(string) (authrefresh.SessionSpec, error) {
		return authrefresh.SessionSpec{
			Store:     authrefresh.NewMemoryStore(nil),
			Refresher: limit.Wrap(&jsonauth.Refresher{URL: api.URL + "/auth/refresh"}),
		}, nil
	}}
	tok, _ := jsonauth.Login(ctx, nil, api.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	_ = users.Login(ctx, "demo", tok)

	keepAlive := &authrefresh.KeepAlive{
		Sessions: users,
		Keys:     func(context.Context) iter.Seq[string] { return slices.Values([]string{"demo"}) },
		MaxAge:   time.Nanosecond, // for the example; a day in real life
	}
	report := keepAlive.Pass(ctx) // Run(ctx) makes a pass every Interval
	fmt.Printf("%d key, %d refreshed\n", report.Keys, report.Refreshed)
	// Output:
	// 1 key, 1 refreshed
}

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
