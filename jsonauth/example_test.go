package jsonauth_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/jsonauth"
)

// Log in with a username and password, then let the Session refresh
// through the API's JSON refresh endpoint and log out through its logout
// endpoint.
func Example() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()

	refresher := &jsonauth.Refresher{URL: api.URL + "/auth/refresh", LogoutURL: api.URL + "/auth/logout"}
	session := authrefresh.NewSession(nil, refresher, authrefresh.Options{})
	tok, err := jsonauth.Login(ctx, nil, api.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	if err != nil {
		panic(err)
	}
	_ = session.Login(ctx, tok)
	_, err = session.Refresh(ctx)
	fmt.Println("refreshed:", err == nil)
	fmt.Println("logged out:", session.Logout(ctx) == nil, server.Counters().Revocations)
	// Output:
	// refreshed: true
	// logged out: true 1
}

// An API that names its fields its own way.
func ExampleFields() {
	refresher := &jsonauth.Refresher{
		URL:    "https://api.example.com/session/renew",
		Fields: jsonauth.Fields{AccessToken: "jwt", RefreshToken: "renewal", ExpiresIn: "ttl"},
	}
	fmt.Println(refresher.Fields.AccessToken)
	// Output: jwt
}
