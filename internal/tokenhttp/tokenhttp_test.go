package tokenhttp

import (
	"net/http"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
)

func TestParseTokenResponse(t *testing.T) {
	tok, err := ParseResponse([]byte(`{"accessToken":"a","refreshToken":"r","expires_in":"60"}`), "application/json", Fields{})
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" || tok.ExpiresIn != time.Minute {
		t.Fatalf("%v %v", tok, err)
	}
	tok, err = ParseResponse([]byte(`access_token=a&token_type=bearer&expires_in=5`), "application/x-www-form-urlencoded", Fields{})
	if err != nil || tok.AccessToken != "a" || tok.AuthorizationHeader() != "Bearer a" {
		t.Fatalf("form: %v %v", tok, err)
	}
	tok, err = ParseResponse([]byte(`{"jwt":"a","rt":"r"}`), "", Fields{AccessToken: "jwt", RefreshToken: "rt"})
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" {
		t.Fatalf("custom fields: %v %v", tok, err)
	}
	for _, bad := range []string{``, `null`, `[]`, `{}`, `{"access_token":1}`, `{"access_token":"a","expires_in":-5}`, `{"access_token":"a","expires_in":{}}`} {
		if _, err := ParseResponse([]byte(bad), "application/json", Fields{}); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expires_in":60}`), "application/json")
	f.Add([]byte(`access_token=a&expires_in=1`), "application/x-www-form-urlencoded")
	f.Add([]byte(`{"accessToken":"a","expiresIn":"1e9"}`), "")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		tok, err := ParseResponse(body, ct, Fields{})
		if err == nil && tok.AccessToken == "" {
			t.Fatal("accepted a response without an access token")
		}
	})
}

func TestRefusalTable(t *testing.T) {
	cases := []struct {
		status int
		body   string
		kind   authrefresh.RefreshKind
		code   string
	}{
		{400, `{"error":"invalid_grant","error_description":"used"}`, authrefresh.RefreshRejected, "invalid_grant"},
		{401, `{"error":"invalid_grant"}`, authrefresh.RefreshRejected, "invalid_grant"},
		{401, `not json`, authrefresh.RefreshRejected, ""},
		{503, `{"error":"temporarily_unavailable"}`, authrefresh.RefreshTransient, "temporarily_unavailable"},
		{429, ``, authrefresh.RefreshTransient, ""},
		{500, `<html>`, authrefresh.RefreshTransient, ""},
		{400, `{"error":"temporarily_unavailable"}`, authrefresh.RefreshTransient, "temporarily_unavailable"},
		{400, `{"error":"use_dpop_nonce"}`, authrefresh.RefreshTransient, "use_dpop_nonce"},
		{400, `{"error":"slow_down"}`, authrefresh.RefreshTransient, "slow_down"},
		{503, `{"error":"invalid_grant"}`, authrefresh.RefreshRejected, "invalid_grant"},
		{403, `{"message":"refresh token revoked"}`, authrefresh.RefreshRejected, ""},
	}
	for _, c := range cases {
		re := Refusal("refresh", c.status, http.Header{"Retry-After": {"7"}}, []byte(c.body))
		if re.Kind != c.kind || re.Code != c.code || re.RetryAfter != 7*time.Second {
			t.Errorf("%d %s: got %+v", c.status, c.body, re)
		}
	}
}

// What a token endpoint says reaches an error message without anything
// that steers a terminal.
func FuzzRefusal(f *testing.F) {
	f.Add([]byte(`{"error":"invalid_grant\x1b]0;pwned\x07","error_description":"bad\u202eevil\r\nline"}`))
	f.Add([]byte("\x00\xff plain"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if msg := Refusal("refresh", 400, http.Header{}, body).Error(); !safetext.Printable(msg) {
			t.Fatalf("server text not cleaned: %q", msg)
		}
	})
}
