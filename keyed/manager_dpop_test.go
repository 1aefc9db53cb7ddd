package keyed_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/authrefresh/authrefresh/keyed"
	"github.com/authrefresh/authrefresh/oauth"
)

// Users whose tokens are DPoP-bound, each to a key of its own login, kept
// in sealed per-user files: each request carries its user's token with a
// proof by that user's key, and each key's Session (whose Config names no
// key) refreshes with the key its token carries; nothing is ever refused
// for its key.
func TestManagerDPoP(t *testing.T) {
	const pw = "correct horse"
	e := authtest.StartRealClock(t, authserver.Config{DPoPNonce: true, AccessTTL: time.Hour,
		Users: map[string]string{"ann": pw, "bob": pw}, Clients: map[string]string{"cli": ""}})
	dir, keyring := t.TempDir(), authtest.Keyring(t, "k1")
	store := func(user string) authrefresh.Store {
		return &filestore.Store{Path: filepath.Join(dir, filestore.KeyFileName(user)), Keyring: keyring}
	}
	ctx := context.Background()
	for _, user := range []string{"ann", "bob"} {
		key, _ := oauth.NewDPoPKey()
		tok, err := (&oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli", DPoP: key}).PasswordLogin(ctx, user, pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := authrefresh.NewSession(store(user), nil, authrefresh.Options{}).Login(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	m := &keyed.Manager{New: func(user string) (keyed.Spec, error) {
		return keyed.Spec{Store: store(user), Refresher: &oauth.Config{TokenURL: e.URL + "/oauth/token", ClientID: "cli"}}, nil
	}, MaxIdle: -1}
	hc := &http.Client{Transport: m}
	for round := range 3 {
		for _, user := range []string{"ann", "bob", "ann"} {
			var me struct{ Sub string }
			req, _ := http.NewRequestWithContext(keyed.WithKey(ctx, user), http.MethodGet, e.URL+"/api/v1/me", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&me)
			resp.Body.Close()
			if resp.StatusCode != 200 || me.Sub != user {
				t.Fatalf("round %d: %s's request answered %d as %q", round, user, resp.StatusCode, me.Sub)
			}
		}
		e.Auth.RevokeAccessTokens()
	}
	got := e.Auth.Counters()
	if got.Refreshes != 4 || got.DPoPKeyMismatch != 0 || got.DPoPReplays != 0 || got.DPoPBadProofs != 0 || got.Unauthorized["dpop_bound"] != 0 {
		t.Fatalf("%d refreshes (want 2 users × 2 revocations); counters %+v", got.Refreshes, got)
	}
}
