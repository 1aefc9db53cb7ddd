// Command zitadel-op runs zitadel/oidc's example OpenID provider (its op
// package, example storage and login pages, unchanged) for the interop
// tests, bound to 127.0.0.1 on a free port — the published example listens
// on every interface — with access tokens that live AT_TTL seconds instead
// of its fixed 5 minutes. It prints {"issuer": "..."} once it listens, and
// stops when stdin closes (the test process ended).
//
// Clients: "native" (public, code + PKCE on any loopback port, refresh
// tokens), "device" (device flow, secret "secret"), and the service user
// "sid1" (client credentials, secret "verysecret"). User: test-user,
// password "verysecure".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// shortLived is the example storage with a shorter access-token lifetime:
// the expiry it announces and the one userinfo and introspection enforce.
type shortLived struct {
	*storage.Storage
	ttl    time.Duration
	mu     sync.Mutex
	expiry map[string]time.Time // access token id → end
}

func (s *shortLived) note(id string) time.Time {
	end := time.Now().Add(s.ttl)
	s.mu.Lock()
	s.expiry[id] = end
	s.mu.Unlock()
	return end
}

func (s *shortLived) expired(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	end, ok := s.expiry[id]
	return ok && !time.Now().Before(end)
}

func (s *shortLived) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, _, err := s.Storage.CreateAccessToken(ctx, req)
	if err != nil {
		return "", time.Time{}, err
	}
	return id, s.note(id), nil
}

func (s *shortLived) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	id, refresh, _, err := s.Storage.CreateAccessAndRefreshTokens(ctx, req, current)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return id, refresh, s.note(id), nil
}

var errExpired = errors.New("token is expired")

func (s *shortLived) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if s.expired(tokenID) {
		return errExpired
	}
	return s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin)
}

func (s *shortLived) SetIntrospectionFromToken(ctx context.Context, in *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	if s.expired(tokenID) {
		return errExpired
	}
	return s.Storage.SetIntrospectionFromToken(ctx, in, tokenID, subject, clientID)
}

// userStore is the example's store with one user, "test-user", whose ID
// is its user name: the example's device flow records the user name where
// its token endpoint looks for an ID.
func userStore() (storage.UserStore, error) {
	f, err := os.CreateTemp("", "zitadel-op-users-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	err = json.NewEncoder(f).Encode(map[string]*storage.User{"test-user": {ID: "test-user", Username: "test-user", Password: "verysecure",
		FirstName: "Test", LastName: "User", Email: "test-user@example.com", EmailVerified: true, PreferredLanguage: language.English}})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return storage.StoreFromFile(f.Name())
}

func main() {
	ttl := time.Minute
	if v, err := strconv.Atoi(os.Getenv("AT_TTL")); err == nil && v > 0 {
		ttl = time.Duration(v) * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	issuer := fmt.Sprintf("http://%s/", ln.Addr())
	storage.RegisterClients(
		storage.NativeClient("native", "http://127.0.0.1/callback"),
		storage.DeviceClient("device", "secret"),
	)
	users, err := userStore()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st := &shortLived{Storage: storage.NewStorage(users), ttl: ttl, expiry: map[string]time.Time{}}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	router := exampleop.SetupServer(issuer, st, logger, false)
	ready, _ := json.Marshal(map[string]string{"issuer": issuer})
	fmt.Println(string(ready))
	go func() {
		io.Copy(io.Discard, os.Stdin) // until the test process goes
		os.Exit(0)
	}()
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
