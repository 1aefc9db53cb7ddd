package oauth_test

import (
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/oauth"
)

// What a provider put in a redirect's error reaches a terminal without
// anything that steers it.
func TestAuthorizationErrorSteersNoTerminal(t *testing.T) {
	const hostile = "bad\x1b]52;c;ZXZpbA==\x07 \x1b]0;pwned\x07\x1b[2J\u009b2J\u202eevil\r\nline"
	msg := (&oauth.AuthorizationError{Flow: "browser", Code: hostile, Description: hostile}).Error()
	if !safetext.Printable(msg) || strings.ContainsAny(msg, "\x1b\x07\u009b\u202e\r\n") {
		t.Errorf("%q", msg)
	}
	if !strings.Contains(msg, "bad") || !strings.Contains(msg, "evil") {
		t.Errorf("lost the text around the controls: %q", msg)
	}
}
