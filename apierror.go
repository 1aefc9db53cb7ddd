package authrefresh

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/authrefresh/authrefresh/internal/safetext"
)

// maxErrorBody bounds how much of an error response is kept.
const maxErrorBody = 64 << 10

// APIError is a non-2xx answer from the API, as returned by Client. Use
// errors.As to get it. A 401 that survived the one refresh-and-replay is an
// APIError too; a dead session is ErrSessionExpired instead.
type APIError struct {
	Method     string
	URL        string // without query string, which may hold secrets
	StatusCode int
	// Message is the server's explanation: "error" or "message" of a JSON
	// body, RFC 6749 "error_description", RFC 7807 "detail"/"title", the
	// error_description of an RFC 6750 WWW-Authenticate challenge, or the start
	// of a text body.
	Message string
	// Code is a machine-readable error code when the server sent one
	// ("invalid_token", "invalid_grant").
	Code string
	// Details are field-level validation errors, as in
	// {"error": "...", "details": {"price": "must be positive"}}.
	Details map[string]any
	// Body is the start of the response body (at most 64 KiB).
	Body []byte
	// Header is the response header.
	Header http.Header
	// Err is why the body could not be read to its end (the connection was
	// lost mid-answer), or nil. errors.Is(apiErr, io.ErrUnexpectedEOF) sees it.
	Err error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " (answer cut short: %v)", e.Err)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *APIError) Unwrap() error { return e.Err }

// NewAPIError builds the APIError of a non-2xx answer whose body the caller
// has read (keep it short: Client reads at most 64 KiB), for code that uses
// Client.Do or a Transport directly.
func NewAPIError(req *http.Request, resp *http.Response, body []byte) *APIError {
	u := *req.URL
	u.RawQuery, u.Fragment, u.User = "", "", nil
	e := &APIError{Method: req.Method, URL: u.String(), StatusCode: resp.StatusCode, Body: body, Header: resp.Header}
	e.Message, e.Code, e.Details = parseErrorBody(body)
	if e.Message == "" {
		if desc, code := bearerChallenge(resp.Header.Get("WWW-Authenticate")); desc != "" || code != "" {
			e.Message, e.Code = cmp.Or(desc, code), cmp.Or(e.Code, code)
		}
	}
	return e
}

// parseErrorBody understands the common JSON error shapes and falls back to
// the start of a text body.
func parseErrorBody(body []byte) (message, code string, details map[string]any) {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		return "", "", nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(trimmed), &obj) == nil && obj != nil {
		str := func(k string) string {
			var s string
			if raw, ok := obj[k]; ok && json.Unmarshal(raw, &s) == nil {
				return s
			}
			return ""
		}
		errStr := str("error")
		if desc := str("error_description"); desc != "" {
			message, code = desc, errStr
		} else {
			message = cmp.Or(errStr, str("message"), str("detail"), str("title"))
			if message == "" {
				// {"error": {"message": "...", "code": ...}} as some APIs nest it.
				var nested struct {
					Message string `json:"message"`
				}
				if raw, ok := obj["error"]; ok && json.Unmarshal(raw, &nested) == nil {
					message = nested.Message
				}
			}
		}
		if raw, ok := obj["details"]; ok {
			_ = json.Unmarshal(raw, &details)
		}
		if raw, ok := obj["errors"]; ok && details == nil {
			_ = json.Unmarshal(raw, &details)
		}
		return safetext.Clip(message, 200), safetext.Clip(code, 200), details
	}
	return safetext.Clip(trimmed, 200), "", nil
}

// bearerChallenge extracts error_description and error from an RFC 6750
// WWW-Authenticate header.
func bearerChallenge(h string) (description, code string) {
	scheme, params, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ""
	}
	for len(params) > 0 {
		params = strings.TrimLeft(params, " ,")
		name, rest, ok := strings.Cut(params, "=")
		if !ok {
			break
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				break
			}
			value, params = rest[1:1+end], rest[2+end:]
		} else {
			value, params, _ = strings.Cut(rest, ",")
		}
		switch strings.TrimSpace(name) {
		case "error":
			code = value
		case "error_description":
			description = value
		}
	}
	return safetext.Clip(description, 200), safetext.Clip(code, 200)
}
