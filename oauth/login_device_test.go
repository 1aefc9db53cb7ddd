package oauth

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
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
		Client:        &Config{TokenURL: hs.URL + "/oauth/token", ClientID: authserver.DemoClientID, ClientSecret: authserver.DemoClientSecret, Scopes: []string{"openid", "read"}},
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
		e.login.Show = func(_ context.Context, c DeviceCode) error {
			e.srv.ApproveDevice(c.UserCode, "", true)
			return nil
		}
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
		if len(e.waits) != 2 {
			t.Fatalf("waits %v: want polls at 5 s and 10 s, and none past the expiry", e.waits)
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
		if !errors.Is(err, authrefresh.ErrRefreshMisconfigured) || strings.Contains(err.Error(), "s3cr3t") {
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

// hostileDevice is a provider whose device authorization answer is
// authorization, and whose token endpoint answers every poll with poll.
func hostileDevice(t *testing.T, authorization string, poll func(w http.ResponseWriter)) *DeviceLogin {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/device" {
			io.WriteString(w, authorization)
			return
		}
		poll(w)
	}))
	t.Cleanup(hs.Close)
	return &DeviceLogin{
		Client:        &Config{TokenURL: hs.URL + "/token", ClientID: "cli"},
		DeviceAuthURL: hs.URL + "/device",
		Show:          func(context.Context, DeviceCode) error { return nil },
	}
}

// No wait outlives the code: an interval or a Retry-After longer than the
// code's remaining life ends the login at once, saying so, instead of
// waiting a day (interval) or calling a live code expired (Retry-After).
func TestDeviceLoginWaitsNoLongerThanTheCode(t *testing.T) {
	pending := func(w http.ResponseWriter) {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"authorization_pending"}`)
	}
	for name, tc := range map[string]struct {
		authorization string
		poll          func(w http.ResponseWriter)
		waits         []time.Duration
		want          string
	}{
		"a day's interval": {
			authorization: `{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://p.example/device","expires_in":30,"interval":86400}`,
			poll:          pending, waits: nil, want: "the code expires in 30s, before the next poll: the provider's polling interval is 24h0m0s",
		},
		"a day's Retry-After": {
			authorization: `{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://p.example/device","expires_in":30,"interval":1}`,
			poll: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "86400")
				w.WriteHeader(503)
			},
			waits: []time.Duration{time.Second}, want: "the code expires in 29s, before the next poll: the provider's Retry-After is 24h0m0s",
		},
		"the code's end": {
			authorization: `{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://p.example/device","expires_in":12,"interval":5}`,
			poll:          pending, waits: []time.Duration{5 * time.Second, 5 * time.Second}, want: "the code expires in 2s, before the next poll",
		},
	} {
		t.Run(name, func(t *testing.T) {
			d := hostileDevice(t, tc.authorization, tc.poll)
			var waits []time.Duration
			d.wait = func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil }
			_, err := d.Login(context.Background())
			var ae *AuthorizationError
			if !errors.As(err, &ae) || ae.Code != "expired_token" || !strings.Contains(ae.Description, tc.want) {
				t.Fatalf("got %v, want expired_token saying %q", err, tc.want)
			}
			if !slices.Equal(waits, tc.waits) {
				t.Fatalf("waits %v, want %v", waits, tc.waits)
			}
		})
	}
}

// A user code or verification URI that carries control characters (a
// clipboard write, a window title, a screen clear) is refused before it is
// shown: RFC 8628 §6.1 expects a short code a user can type.
func TestDeviceLoginRefusesCodesThatSteerTheTerminal(t *testing.T) {
	for _, answer := range []string{
		`{"device_code":"d","user_code":"\u001b]52;c;ZXZpbA==\u0007","verification_uri":"https://p.example/device"}`,
		`{"device_code":"d","user_code":"ABCD","verification_uri":"https://p.example/device\u001b]0;pwned\u0007"}`,
		`{"device_code":"d","user_code":"ABCD\u009b2J","verification_uri":"https://p.example/device"}`,
		`{"device_code":"d","user_code":"ABCD","verification_uri":"https://p.example/device","verification_uri_complete":"https://p.example/d?c=\u202eABCD"}`,
		`{"device_code":"d","user_code":"` + strings.Repeat("A", 65) + `","verification_uri":"https://p.example/device"}`,
	} {
		shown := false
		d := hostileDevice(t, answer, func(http.ResponseWriter) {})
		d.Show = func(context.Context, DeviceCode) error { shown = true; return nil }
		_, err := d.Login(context.Background())
		if err == nil || shown || strings.ContainsAny(err.Error(), "\x1b\x07\u009b\u202e") {
			t.Fatalf("%s: shown %v, error %q", answer, shown, err)
		}
	}
}
