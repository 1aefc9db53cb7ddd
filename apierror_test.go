package authrefresh

import (
	"testing"

	"github.com/authrefresh/authrefresh/internal/safetext"
)

func TestParseErrorBodyShapes(t *testing.T) {
	cases := []struct{ body, msg, code, detail string }{
		{`{"error":"invalid product","details":{"price":"must be positive"}}`, "invalid product", "", "price"},
		{`{"error":"invalid_token","error_description":"expired"}`, "expired", "invalid_token", ""},
		{`{"message":"nope"}`, "nope", "", ""},
		{`{"type":"about:blank","title":"Bad","detail":"worse"}`, "worse", "", ""},
		{`{"error":{"message":"nested"}}`, "nested", "", ""},
		{"plain\ntext", "plain text", "", ""},
		{``, "", "", ""},
	}
	for _, c := range cases {
		msg, code, details := parseErrorBody([]byte(c.body))
		if msg != c.msg || code != c.code || (c.detail != "" && details[c.detail] == nil) {
			t.Errorf("%s: got %q %q %v", c.body, msg, code, details)
		}
	}
	if d, c := bearerChallenge(`Bearer realm="x", error="invalid_token", error_description="the access token is expired"`); d != "the access token is expired" || c != "invalid_token" {
		t.Errorf("challenge: %q %q", d, c)
	}
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"error":"invalid product","details":{"price":"x"}}`))
	f.Add([]byte(`{"error_description":"d","error":"c"}`))
	f.Add([]byte("\x00\xff plain"))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, code, _ := parseErrorBody(body)
		desc, challenge := bearerChallenge(string(body))
		for _, s := range []string{msg, code, desc, challenge} {
			if !safetext.Printable(s) {
				t.Fatalf("server text not cleaned: %q", s)
			}
		}
	})
}
