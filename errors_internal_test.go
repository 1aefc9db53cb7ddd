package authrefresh

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/authrefresh/authrefresh/internal/safetext"
)

// What a provider says reaches a terminal without anything that steers it:
// a clipboard write (OSC 52), a window title, a screen clear (in its 7-bit
// and C1 forms), a bidirectional override, a line break.
func TestServerTextSteersNoTerminal(t *testing.T) {
	const hostile = "bad\x1b]52;c;ZXZpbA==\x07 \x1b]0;pwned\x07\x1b[2J\u009b2J\u202eevil\r\nline"
	body, _ := json.Marshal(map[string]string{"error": "invalid_grant" + hostile, "error_description": hostile})
	for name, msg := range map[string]string{
		"built by others": (&RefreshError{Code: hostile, Description: hostile}).Error(),
		"API error":       func() string { m, _, _ := parseErrorBody(body); return m }(),
		"bearer challenge": func() string {
			d, _ := bearerChallenge(`Bearer error="x", error_description="` + hostile + `"`)
			return d
		}(),
	} {
		if !safetext.Printable(msg) || strings.ContainsAny(msg, "\x1b\x07\u009b\u202e\r\n") {
			t.Errorf("%s: %q", name, msg)
		}
		if !strings.Contains(msg, "bad") && !strings.Contains(msg, "evil") {
			t.Errorf("%s lost the text around the controls: %q", name, msg)
		}
	}
}
