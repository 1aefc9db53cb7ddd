package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunCountsAndSendsTheToken(t *testing.T) {
	var seen, wrong atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if r.Header.Get("Authorization") != "Bearer tok-from-stdin" {
			wrong.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer hs.Close()
	var out strings.Builder
	if err := run(hs.URL, true, 4, 200*time.Millisecond, 0, strings.NewReader("tok-from-stdin\n"), &out); err != nil {
		t.Fatal(err)
	}
	var res result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Requests == 0 || res.Errors != 0 || wrong.Load() != 0 || int64(res.AllRequests) != seen.Load() {
		t.Fatalf("result %+v; server saw %d, %d without the token", res, seen.Load(), wrong.Load())
	}
}

func TestRunRefusesNonLoopbackAndMissingToken(t *testing.T) {
	if err := run("http://192.0.2.1/", false, 1, time.Millisecond, 0, strings.NewReader(""), &strings.Builder{}); err == nil {
		t.Fatal("a non-loopback URL was accepted")
	}
	if err := run("http://127.0.0.1:1/", true, 1, time.Millisecond, 0, strings.NewReader(""), &strings.Builder{}); err == nil {
		t.Fatal("an empty stdin was accepted as a token")
	}
}
