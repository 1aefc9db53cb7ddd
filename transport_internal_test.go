package authrefresh

import (
	"net/http"
	"testing"
)

func TestOriginMatching(t *testing.T) {
	u := func(s string) *http.Request { r, _ := http.NewRequest("GET", s, nil); return r }
	tr := &Transport{Origins: []string{"https://api.example.com", "http://127.0.0.1:8080/"}}
	for s, want := range map[string]bool{
		"https://api.example.com/x":     true,
		"https://API.example.com:443/x": true,
		"http://api.example.com/x":      false,
		"https://api.example.com.evil/": false,
		"https://evil.com/api.example":  false,
		"http://127.0.0.1:8080/a":       true,
		"http://127.0.0.1:8081/a":       false,
	} {
		if got := tr.mayAuthenticate(u(s)); got != want {
			t.Errorf("%s: %v, want %v", s, got, want)
		}
	}
}
