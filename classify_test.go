package authrefresh

import (
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
