package bff_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/oauth"
)

// A BFF in front of an app and its API: the browser logs in through the
// provider and then calls /api/ with only its session cookie and the
// X-CSRF header; the BFF attaches the user's token. (The reference server
// plays the provider and the API, and approves its demo user at once.)
func Example() {
	bffServer := httptest.NewUnstartedServer(nil)
	origin := "http://" + bffServer.Listener.Addr().String()
	provider, _ := authserver.New(authserver.Config{PasswordCost: 4, AutoApproveUser: authserver.DemoUser,
		Clients: map[string]string{"app": "app-secret"}})
	idp := httptest.NewServer(provider)
	defer idp.Close()

	app, err := bff.New(bff.Config{
		Provider: &oauth.ProviderMetadata{AuthorizationEndpoint: idp.URL + "/oauth/authorize", TokenEndpoint: idp.URL + "/oauth/token"},
		Client:   oauth.Config{ClientID: "app", ClientSecret: "app-secret"},
		URL:      origin,
		APIs:     []bff.API{{Prefix: "/api/", Upstream: idp.URL + "/api/v1/"}},
		Static:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the app") }),
	})
	if err != nil {
		panic(err)
	}
	bffServer.Config.Handler = app
	bffServer.Start()
	defer bffServer.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, _ := browser.Get(origin + "/bff/login?returnUrl=/") // what the app's login button links to
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, origin+"/api/me", nil)
	req.Header.Set("X-CSRF", "1") // what the app's fetch adds to every call
	resp, _ = browser.Do(req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, len(body) > 0)
	// Output: 200 true
}
