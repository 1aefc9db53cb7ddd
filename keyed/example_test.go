package keyed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/keyed"
)

// keyed.Manager holds a Session per user; one http.Client serves them all, each
// request carrying the token of the user its context names.
func ExampleManager() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4, Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"}})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()

	users := &keyed.Manager{
		New: func(user string) (keyed.Spec, error) {
			return keyed.Spec{
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
		req, _ := http.NewRequestWithContext(keyed.WithKey(ctx, user), http.MethodGet, api.URL+"/api/v1/me", nil)
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

// A keyed.KeepAlive pass refreshes the keys whose tokens are older than MaxAge,
// so that users who went quiet keep their connections.
func ExampleKeepAlive() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	api := httptest.NewServer(server)
	defer api.Close()
	ctx := context.Background()
	limit := keyed.NewRefreshLimit(4) // toward this token endpoint, for every key
	users := &keyed.Manager{New: func(string) (keyed.Spec, error) {
		return keyed.Spec{
			Store:     authrefresh.NewMemoryStore(nil),
			Refresher: limit.Wrap(&jsonauth.Refresher{URL: api.URL + "/auth/refresh"}),
		}, nil
	}}
	tok, _ := jsonauth.Login(ctx, nil, api.URL+"/auth/login", authserver.DemoUser, authserver.DemoPassword)
	_ = users.Login(ctx, "demo", tok)

	keepAlive := &keyed.KeepAlive{
		Manager: users,
		Keys:    func(context.Context) iter.Seq[string] { return slices.Values([]string{"demo"}) },
		MaxAge:  time.Nanosecond, // for the example; a day in real life
	}
	report := keepAlive.Pass(ctx) // Run(ctx) makes a pass every Interval
	fmt.Printf("%d key, %d refreshed\n", report.Keys, report.Refreshed)
	// Output:
	// 1 key, 1 refreshed
}
