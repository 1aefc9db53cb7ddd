package authrefresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/jsonauth"
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

// A Client calls a JSON API: paths resolve against its base URL, bodies
// are JSON both ways, and a non-2xx answer is an *APIError with the
// server's message.
func ExampleClient() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()
	tok, _ := jsonauth.Login(ctx, nil, api.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	session := authrefresh.NewSession(nil, &jsonauth.Refresher{URL: api.URL + "/auth/refresh"}, authrefresh.Options{})
	_ = session.Login(ctx, tok)

	client, _ := authrefresh.NewClient(api.URL+"/api/v1/", session)
	client.Timeout = 10 * time.Second
	var me struct{ Sub string }
	if err := client.Get(ctx, "me", &me); err != nil {
		panic(err)
	}
	err := client.Get(ctx, "data/404", nil)
	var apiErr *authrefresh.APIError
	fmt.Println(me.Sub, errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound)
	// Output: demo true
}
