package authrefresh

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRefusalTable(t *testing.T) {
	cases := []struct {
		status int
		body   string
		kind   RefreshKind
		code   string
	}{
		{400, `{"error":"invalid_grant","error_description":"used"}`, RefreshRejected, "invalid_grant"},
		{401, `{"error":"invalid_grant"}`, RefreshRejected, "invalid_grant"},
		{401, `not json`, RefreshRejected, ""},
		{503, `{"error":"temporarily_unavailable"}`, RefreshTransient, "temporarily_unavailable"},
		{429, ``, RefreshTransient, ""},
		{500, `<html>`, RefreshTransient, ""},
		{400, `{"error":"temporarily_unavailable"}`, RefreshTransient, "temporarily_unavailable"},
		{400, `{"error":"use_dpop_nonce"}`, RefreshTransient, "use_dpop_nonce"},
		{400, `{"error":"slow_down"}`, RefreshTransient, "slow_down"},
		{503, `{"error":"invalid_grant"}`, RefreshRejected, "invalid_grant"},
		{403, `{"message":"refresh token revoked"}`, RefreshRejected, ""},
	}
	for _, c := range cases {
		re := refusalError("refresh", c.status, http.Header{"Retry-After": {"7"}}, []byte(c.body))
		if re.Kind != c.kind || re.Code != c.code || re.RetryAfter != 7*time.Second {
			t.Errorf("%d %s: got %+v", c.status, c.body, re)
		}
	}
}

// The error boundary: whatever a Refresher returns leaves as a *RefreshError.
func TestAsRefreshError(t *testing.T) {
	plain := errors.New("dial tcp: connection refused")
	if re := asRefreshError(plain); re.Kind != RefreshTransient || !errors.Is(re, plain) || !errors.Is(re, ErrRefreshTransient) {
		t.Errorf("plain error: %+v", re)
	}
	wrapped := fmt.Errorf("my refresher: %w", Rejected(errors.New("revoked")))
	if re := asRefreshError(wrapped); re.Kind != RefreshRejected {
		t.Errorf("wrapped rejection: %+v", re)
	}
	if re := refreshFailure(errors.New("sent secret-refresh-token-123 and failed"), &Token{RefreshToken: "secret-refresh-token-123"}); strings.Contains(re.Error(), "secret") {
		t.Errorf("token quoted: %v", re)
	}
}

// What a provider says reaches a terminal without anything that steers it:
// a clipboard write (OSC 52), a window title, a screen clear (in its 7-bit
// and C1 forms), a bidirectional override, a line break.
func TestServerTextSteersNoTerminal(t *testing.T) {
	const hostile = "bad\x1b]52;c;ZXZpbA==\x07 \x1b]0;pwned\x07\x1b[2J\u009b2J\u202eevil\r\nline"
	body, _ := json.Marshal(map[string]string{"error": "invalid_grant" + hostile, "error_description": hostile})
	for name, msg := range map[string]string{
		"token endpoint":  refusalError("refresh", 400, http.Header{}, body).Error(),
		"built by others": (&RefreshError{Code: hostile, Description: hostile}).Error(),
		"authorization":   (&AuthorizationError{Flow: "browser", Code: hostile, Description: hostile}).Error(),
		"API error":       func() string { m, _, _ := parseErrorBody(body); return m }(),
		"bearer challenge": func() string {
			d, _ := bearerChallenge(`Bearer error="x", error_description="` + hostile + `"`)
			return d
		}(),
	} {
		if !printable(msg) || strings.ContainsAny(msg, "\x1b\x07\u009b\u202e\r\n") {
			t.Errorf("%s: %q", name, msg)
		}
		if !strings.Contains(msg, "bad") && !strings.Contains(msg, "evil") {
			t.Errorf("%s lost the text around the controls: %q", name, msg)
		}
	}
}
