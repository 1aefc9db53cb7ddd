package authserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/authrefresh/authrefresh/authserver"
)

// The reference server in a test: log in over its JSON API, call its
// protected API, and read its counters.
func Example() {
	server, _ := authserver.New(authserver.Config{PasswordCost: 4})
	srv := httptest.NewServer(server)
	defer srv.Close()

	body, _ := json.Marshal(map[string]string{"username": authserver.DemoUser, "password": authserver.DemoPassword})
	resp, err := http.Post(srv.URL+"/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, server.Counters().Logins)
	// Output: 200 OK 1
}
