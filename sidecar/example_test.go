package sidecar_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/sidecar"
)

// A sidecar in front of an API: the client sends no token, the API sees
// the Session's.
func Example() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "upstream saw: ", r.Header.Get("Authorization"))
	}))
	defer api.Close()
	session := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	_ = session.Login(context.Background(), &authrefresh.Token{AccessToken: "t0k3n"})

	upstream, _ := url.Parse(api.URL)
	proxy := httptest.NewUnstartedServer(nil)
	proxy.Config.Handler = sidecar.New(sidecar.Config{Session: session, Upstream: upstream,
		Guard: sidecar.Guard{Hosts: sidecar.LoopbackHosts(proxy.Listener.Addr())}})
	proxy.Start()
	defer proxy.Close()

	resp, err := http.Get(proxy.URL + "/v1/me")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	// Output: upstream saw: Bearer t0k3n
}
