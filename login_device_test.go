package authrefresh

import (
	"cmp"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/fakeclock"
)

// deviceEnv is a reference server on a fake clock, and a DeviceLogin whose
// waits advance that clock instead of sleeping.
type deviceEnv struct {
	srv   *authserver.Server
	clock *fakeclock.Clock
	login *DeviceLogin
	waits []time.Duration
	// onWait runs at each wait (its index), before the clock moves; it
	// returns how far the clock moves (the wait itself when 0).
	onWait func(i int, d time.Duration) time.Duration
}

func newDeviceEnv(t *testing.T, cfg authserver.Config) *deviceEnv {
	t.Helper()
	clock := fakeclock.New()
	cfg.Clock, cfg.PasswordCost = clock.Now, 4
	srv, err := authserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &deviceEnv{srv: srv, clock: clock}
	e.login = &DeviceLogin{
		Client:        &OAuth2Refresher{TokenURL: hs.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Scopes: []string{"openid", "read"}},
		DeviceAuthURL: hs.URL + "/oauth/device_authorization",
		Show:          func(context.Context, DeviceCode) error { return nil },
	}
	e.login.wait = func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		moved := d
		if e.onWait != nil {
			moved = cmp.Or(e.onWait(len(e.waits), d), d)
		}
		e.waits = append(e.waits, d)
		clock.Advance(moved)
		return nil
	}
	return e
}

// The user approves after the first poll: two polls, 5 s apart as the
// provider asks, and a token with its refresh and ID tokens.
func TestDeviceLogin(t *testing.T) {
	e := newDeviceEnv(t, authserver.Config{})
	var shown DeviceCode
	e.login.Show = func(_ context.Context, c DeviceCode) error { shown = c; return nil }
	e.onWait = func(i int, _ time.Duration) time.Duration {
		if i == 1 && !e.srv.ApproveDevice(shown.UserCode, authserver.DemoUser, false) {
			t.Error("the code was not pending")
		}
		return 0
	}
	tok, err := e.login.Login(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.IDToken == "" || tok.Scope != "openid read" {
		t.Fatalf("token %+v", tok)
	}
	if len(shown.UserCode) != 9 || !strings.HasSuffix(shown.VerificationURI, "/device") || !strings.Contains(shown.VerificationURIComplete, shown.UserCode) || shown.ExpiresIn != 10*time.Minute {
		t.Fatalf("shown %+v", shown)
	}
	if c := e.srv.Counters(); c.DevicePolls != 2 || c.DeviceSlowDowns != 0 || len(e.waits) != 2 || e.waits[0] != 5*time.Second || e.waits[1] != 5*time.Second {
		t.Fatalf("polls %d, slow downs %d, waits %v", c.DevicePolls, c.DeviceSlowDowns, e.waits)
	}
}

// A poll that comes too early is told to slow down: every later poll waits
// 5 s more (RFC 8628 §3.5), and the provider sees no second slow_down.
func TestDeviceLoginSlowDown(t *testing.T) {
	e := newDeviceEnv(t, authserver.Config{DeviceInterval: 2 * time.Second})
	var shown DeviceCode
	e.login.Show = func(_ context.Context, c DeviceCode) error { shown = c; return nil }
	e.onWait = func(i int, d time.Duration) time.Duration {
		switch i {
		case 0:
			return time.Second // a poll 1 s early
		case 3:
			e.srv.ApproveDevice(shown.UserCode, authserver.DemoUser, false)
		}
		return 0
	}
	if _, err := e.login.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{2 * time.Second, 7 * time.Second, 7 * time.Second, 7 * time.Second}
	if c := e.srv.Counters(); c.DeviceSlowDowns != 1 || c.DevicePolls != 4 || len(e.waits) != 4 || e.waits[1] != want[1] || e.waits[3] != want[3] {
		t.Fatalf("slow downs %d, polls %d, waits %v; want %v", c.DeviceSlowDowns, c.DevicePolls, e.waits, want)
	}
}

// Denied, expired, cancelled, a refused client: each ends the polling with
// an error that says which.
func TestDeviceLoginEnds(t *testing.T) {
	t.Run("denied", func(t *testing.T) {
		e := newDeviceEnv(t, authserver.Config{})
		e.login.Show = func(_ context.Context, c DeviceCode) error { e.srv.ApproveDevice(c.UserCode, "", true); return nil }
		var ae *AuthorizationError
		if _, err := e.login.Login(context.Background()); !errors.As(err, &ae) || ae.Code != "access_denied" || ae.Flow != "device" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := newDeviceEnv(t, authserver.Config{DeviceCodeTTL: 12 * time.Second})
		var ae *AuthorizationError
		if _, err := e.login.Login(context.Background()); !errors.As(err, &ae) || ae.Code != "expired_token" {
			t.Fatalf("got %v", err)
		}
		if len(e.waits) != 3 {
			t.Fatalf("waits %v: want polls at 5 s, 10 s, then the expiry", e.waits)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		e := newDeviceEnv(t, authserver.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		e.login.Show = func(context.Context, DeviceCode) error { cancel(); return nil }
		if _, err := e.login.Login(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		e := newDeviceEnv(t, authserver.Config{})
		e.login.Client.ClientSecret = "s3cr3t-value-xyz"
		_, err := e.login.Login(context.Background())
		if !errors.Is(err, ErrRefreshMisconfigured) || strings.Contains(err.Error(), "s3cr3t") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("server down while polling", func(t *testing.T) {
		e := newDeviceEnv(t, authserver.Config{})
		var shown DeviceCode
		e.login.Show = func(_ context.Context, c DeviceCode) error { shown = c; return nil }
		e.onWait = func(i int, _ time.Duration) time.Duration {
			switch i {
			case 0:
				e.srv.SetChaos(authserver.Chaos{RefreshFailRate: 1})
			case 1:
				e.srv.SetChaos(authserver.Chaos{})
				e.srv.ApproveDevice(shown.UserCode, authserver.DemoUser, false)
			}
			return 0
		}
		if _, err := e.login.Login(context.Background()); err != nil {
			t.Fatalf("a 5xx while polling ended the login: %v", err)
		}
	})
}

func FuzzParseDeviceAuthorization(f *testing.F) {
	f.Add([]byte(`{"device_code":"d","user_code":"U","verification_uri":"https://x/device","expires_in":600,"interval":5}`))
	f.Add([]byte(`{"device_code":"d","user_code":"U","verification_url":"https://x/device","interval":"0"}`))
	f.Add([]byte(`{"device_code":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		code, device, interval, err := parseDeviceAuthorization(data)
		if err != nil {
			return
		}
		if device == "" || code.UserCode == "" || !strings.HasPrefix(code.VerificationURI, "http") || interval < time.Second || code.ExpiresIn <= 0 {
			t.Fatalf("accepted %q as %+v %q %v", data, code, device, interval)
		}
	})
}
