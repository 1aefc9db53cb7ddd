package oauth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
)

// DeviceLogin logs a user in with the device authorization grant (RFC
// 8628), for a machine without a browser: the user opens a URL on another
// device and enters a code there. Login asks the provider for the codes,
// hands them to Show, then polls the token endpoint at the interval the
// provider asks for (slower when told to slow down) until the user approves,
// denies, the code expires or ctx ends.
//
// x/oauth2 has the same flow (Config.DeviceAuth, DeviceAccessToken); this
// one differs where the rest of the package needs it to: the token
// endpoint's answers go through the one classification table (a wrong
// client secret is RefreshMisconfigured, not a failed poll), the client
// authenticates as Config says (private_key_jwt included, an assertion
// signed afresh for each poll), text from the provider is checked before
// it reaches a terminal, and the waits are injectable, so tests run the
// flow without waiting out its intervals. PKCE, where the browser flow
// needs it, is x/oauth2's.
type DeviceLogin struct {
	// Client is the OAuth2 client: its TokenURL, ClientID, client
	// authentication and Scopes are used. The same value is the Session's
	// Refresher afterwards. Required.
	Client *Config
	// DeviceAuthURL is the device authorization endpoint
	// (ProviderMetadata.DeviceAuthorizationEndpoint). Required.
	DeviceAuthURL string
	// Params are more parameters of the device authorization request:
	// "audience", "resource".
	Params url.Values
	// Show tells the user where to go and which code to enter. Required.
	Show func(ctx context.Context, code DeviceCode) error

	wait func(ctx context.Context, d time.Duration) error // tests: no real waiting
}

// DeviceCode is what the user needs to approve a device login.
type DeviceCode struct {
	// UserCode is the code the user enters, e.g. "WDJB-MJHT".
	UserCode string
	// VerificationURI is where the user enters it.
	VerificationURI string
	// VerificationURIComplete, if the provider sent it, includes the code:
	// opening it (or its QR code) needs no typing.
	VerificationURIComplete string
	// ExpiresIn is how long the code can be approved.
	ExpiresIn time.Duration
}

// deviceDefaults are RFC 8628's: poll every 5 s unless told otherwise; a
// code with no stated lifetime is given 10 minutes.
const (
	deviceInterval = 5 * time.Second
	deviceLifetime = 10 * time.Minute
)

// Login runs the flow. It fails with an *AuthorizationError when the user
// denied, the code expired ("access_denied", "expired_token"), with a
// *RefreshError (Op "login") when the provider refused the client or could
// not be reached, and with ctx's error when ctx ended first.
func (d *DeviceLogin) Login(ctx context.Context) (*authrefresh.Token, error) {
	client, err := userClient("device", d.Client)
	if err != nil {
		return nil, err
	}
	if d.Show == nil {
		return nil, errors.New("authrefresh: DeviceLogin.Show is nil: set it to tell the user the code and the URL")
	}
	deviceCode, code, interval, err := d.authorize(ctx, client)
	if err != nil {
		return nil, err
	}
	if err := d.Show(ctx, code); err != nil {
		return nil, fmt.Errorf("authrefresh: device login: showing the code: %w", err)
	}
	wait := d.wait
	if wait == nil {
		wait = sleepCtx
	}
	// The waits are counted rather than a clock read: they are nearly all of
	// the time, and the provider says expired_token anyway if we undercount.
	// No wait runs past the code's expiry: a poll after it is pointless.
	next, why := interval, "the provider's polling interval"
	for waited := time.Duration(0); ; {
		if left := code.ExpiresIn - waited; next > left {
			desc := "the code was not approved in time; start again"
			if left > 0 {
				desc = fmt.Sprintf("the code expires in %s, before the next poll: %s is %s; start again", left.Round(time.Second), why, next.Round(time.Second))
			}
			return nil, &AuthorizationError{Flow: "device", Code: "expired_token", Description: desc}
		}
		if err := wait(ctx, next); err != nil {
			return nil, tokenhttp.WithOp(tokenhttp.Cancelled(ctx), "login")
		}
		waited += next
		tok, err := client.exchange(ctx, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}})
		if err == nil {
			return tok, nil
		}
		var re *authrefresh.RefreshError
		if !errors.As(err, &re) {
			return nil, err
		}
		next, why = interval, "the provider's polling interval"
		switch {
		case re.Code == "authorization_pending":
		case re.Code == "slow_down":
			interval += 5 * time.Second // RFC 8628 §3.5, for this and every later poll
			next = interval
		case re.Code == "access_denied" || re.Code == "expired_token":
			return nil, &AuthorizationError{Flow: "device", Code: re.Code, Description: re.Description}
		case re.Kind == authrefresh.RefreshTransient && ctx.Err() == nil:
			// A network blip or a 5xx: keep polling; the code is still
			// good. A Retry-After holds for the next poll only.
			if re.RetryAfter > next {
				next, why = re.RetryAfter, "the provider's Retry-After"
			}
		default:
			return nil, err
		}
	}
}

// authorize asks for the device and user codes (RFC 8628 §3.1–3.2).
func (d *DeviceLogin) authorize(ctx context.Context, client *Config) (string, DeviceCode, time.Duration, error) {
	form := url.Values{}
	for k, vs := range d.Params {
		form[k] = append([]string(nil), vs...)
	}
	if len(client.Scopes) > 0 {
		form.Set("scope", strings.Join(client.Scopes, " "))
	}
	form.Set("client_id", client.ClientID) // RFC 8628 §3.1 names it, even with client authentication
	req, err := client.request(ctx, d.DeviceAuthURL, form)
	if err != nil {
		return "", DeviceCode{}, 0, tokenhttp.WithOp(err, "login")
	}
	data, resp, err := tokenhttp.Send(ctx, "login", client.HTTPClient, req)
	if err != nil {
		return "", DeviceCode{}, 0, err
	}
	if resp.StatusCode/100 != 2 {
		return "", DeviceCode{}, 0, tokenhttp.Refusal("login", resp.StatusCode, resp.Header, data)
	}
	code, device, interval, err := parseDeviceAuthorization(data)
	if err != nil {
		return "", DeviceCode{}, 0, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: "login", StatusCode: resp.StatusCode, Err: fmt.Errorf("%s: %w", tokenhttp.Endpoint(req.URL), err)}
	}
	return device, code, interval, nil
}

// parseDeviceAuthorization reads a device authorization response.
func parseDeviceAuthorization(data []byte) (code DeviceCode, device string, interval time.Duration, err error) {
	fields := map[string]json.RawMessage{}
	if json.Unmarshal(data, &fields) != nil {
		return code, "", 0, errors.New("the device authorization answer is not a JSON object")
	}
	str := func(names ...string) string {
		s, e := tokenhttp.String(fields, "", names...)
		if e != nil {
			err = errors.Join(err, e)
		}
		return s
	}
	device, code.UserCode = str("device_code"), str("user_code")
	// "verification_url" is what Google sends.
	code.VerificationURI, code.VerificationURIComplete = str("verification_uri", "verification_url"), str("verification_uri_complete")
	expires, e1 := tokenhttp.Seconds(fields, "", "expires_in")
	interval, e2 := tokenhttp.Seconds(fields, "", "interval")
	if err = errors.Join(err, e1, e2); err != nil {
		return DeviceCode{}, "", 0, err
	}
	if device == "" || code.UserCode == "" || code.VerificationURI == "" {
		return DeviceCode{}, "", 0, errors.New("the device authorization answer lacks device_code, user_code or verification_uri")
	}
	// The code and the URLs are shown to the user: a control character
	// could move the cursor, retitle the window or write the clipboard.
	// RFC 8628 §6.1 expects a short code a user can type.
	if utf8.RuneCountInString(code.UserCode) > 64 || !safetext.Printable(code.UserCode) {
		return DeviceCode{}, "", 0, errors.New("the device authorization answer's user_code is not a short code a user can type")
	}
	if !safetext.Printable(code.VerificationURI) || !safetext.Printable(code.VerificationURIComplete) {
		return DeviceCode{}, "", 0, errors.New("the device authorization answer's verification URI holds control characters")
	}
	for _, u := range []string{code.VerificationURI, code.VerificationURIComplete} {
		if p, perr := url.Parse(u); u != "" && (perr != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "") {
			return DeviceCode{}, "", 0, errors.New("the device authorization answer's verification URI is not an http(s) URL")
		}
	}
	code.ExpiresIn = cmp.Or(expires, deviceLifetime)
	if interval == 0 {
		interval = deviceInterval
	}
	return code, device, max(interval, time.Second), nil
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
