package authrefresh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// Every kind of body is replayed byte for byte after a refusal, except a
// stream longer than the replay buffer, which fails clearly.
func TestBodyReplayedExactlyAfterRefusal(t *testing.T) {
	e := authtest.Start(t, authserver.Config{})
	s := e.Session(nil, authrefresh.Options{})
	tr := &authrefresh.Transport{Session: s, MaxReplayBuffer: 4 << 10}
	hc := &http.Client{Transport: tr}
	product := func(name string, size int) []byte {
		b, _ := json.Marshal(map[string]any{"name": name, "price": 9.5, "description": strings.Repeat("x", size)})
		return b
	}
	tmp := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(tmp, product("from-file", 100), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		body func() io.Reader
		want []byte
	}{
		{"bytes.Reader", func() io.Reader { return bytes.NewReader(product("bytes-reader", 1000)) }, product("bytes-reader", 1000)},
		{"strings.Reader", func() io.Reader { return strings.NewReader(string(product("strings-reader", 1000))) }, product("strings-reader", 1000)},
		{"plain reader", func() io.Reader { return onlyReader{bytes.NewReader(product("plain-reader", 3000))} }, product("plain-reader", 3000)},
		{"seeker (file)", nil, product("from-file", 100)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.Auth.Products())
			e.Auth.RevokeAccessTokens() // the first attempt is refused
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/data", nil)
			if tc.body != nil {
				req, _ = http.NewRequest(http.MethodPost, e.URL+"/api/v1/data", tc.body())
			} else {
				f, err := os.Open(tmp)
				if err != nil {
					t.Fatal(err)
				}
				req.Body = f // an *os.File: Seek, no GetBody
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d", resp.StatusCode)
			}
			products := e.Auth.Products()
			if len(products) != before+1 {
				t.Fatalf("%d products created, want exactly 1", len(products)-before)
			}
			got, _ := json.Marshal(map[string]any{"name": products[before].Name, "price": products[before].Price, "description": products[before].Description})
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("server stored a different payload:\n got %.80s\nwant %.80s", got, tc.want)
			}
		})
	}
	t.Run("stream over the limit", func(t *testing.T) {
		before := len(e.Auth.Products())
		refreshesBefore := e.Auth.Counters().Refreshes
		e.Auth.RevokeAccessTokens()
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/data", onlyReader{bytes.NewReader(product("too-big", 8000))})
		_, err := hc.Do(req)
		if !errors.Is(err, authrefresh.ErrBodyNotReplayable) {
			t.Fatalf("got %v, want ErrBodyNotReplayable", err)
		}
		var refused *authrefresh.NotReplayedError
		if !errors.As(err, &refused) || refused.StatusCode != http.StatusUnauthorized {
			t.Fatalf("want a NotReplayedError with status 401, got %v", err)
		}
		if len(e.Auth.Products()) != before {
			t.Fatal("a product was created from a refused request")
		}
		if e.Auth.Counters().Refreshes != refreshesBefore+1 {
			t.Fatal("the dead token was not refreshed for the next request")
		}
	})
}

// A ReplayBudget caps what every replay copy holds at once: 200 concurrent
// 1-MiB streamed uploads through a 16-MiB budget never hold more than 16 MiB
// (the budget's own accounting), all give it back, and the uploads that found
// it spent still go through when the server accepts them, or fail as not
// replayable — never by using more memory — when it refuses them.
func TestReplayBudgetBoundsConcurrentUploads(t *testing.T) {
	const n, size, limit = 200, 1 << 20, 16 << 20
	for _, refuse := range []bool{false, true} {
		budget := authrefresh.NewReplayBudget(limit)
		s := authrefresh.NewSession(authrefresh.NewMemoryStore(&authrefresh.Token{AccessToken: "access-token-1", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}),
			authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
				return &authrefresh.Token{AccessToken: "access-token-2", Expiry: time.Now().Add(time.Hour)}, nil
			}), authrefresh.Options{})
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			status := http.StatusOK
			if refuse && r.Header.Get("Authorization") == "Bearer access-token-1" {
				status = http.StatusUnauthorized
			}
			return &http.Response{StatusCode: status, Body: http.NoBody, Request: r}, nil
		})
		tr := &authrefresh.Transport{Session: s, Base: base, MaxReplayBuffer: size, ReplayBudget: budget}
		var replayed, notReplayable atomic.Int32
		errs := authtest.RunParallel(n, func(int) error {
			req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/upload", onlyReader{io.LimitReader(zeros{}, size)})
			resp, err := tr.RoundTrip(req)
			switch {
			case errors.Is(err, authrefresh.ErrBodyNotReplayable):
				notReplayable.Add(1)
				return nil
			case err != nil:
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			replayed.Add(1)
			return nil
		})
		if k, first := authtest.CountErrors(errs); k > 0 {
			t.Fatalf("refuse=%v: %d uploads failed: %v", refuse, k, first)
		}
		if budget.Peak() > limit || budget.InUse() != 0 {
			t.Fatalf("refuse=%v: budget peak %d (limit %d), in use after %d", refuse, budget.Peak(), limit, budget.InUse())
		}
		if !refuse && replayed.Load() != n {
			t.Fatalf("accepted uploads: %d of %d went through", replayed.Load(), n)
		}
		t.Logf("refuse=%v: peak %d MiB of %d; %d succeeded, %d not replayable", refuse, budget.Peak()>>20, limit>>20, replayed.Load(), notReplayable.Load())
	}
}
