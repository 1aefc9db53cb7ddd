package authrefresh

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file is the one place that decides what a failed token-endpoint call
// means. Every refresher, the login helpers and the Session go through it.

// codeKinds are the RFC 6749 §5.2 (and extension) error codes whose meaning
// does not depend on the status they came with.
var codeKinds = map[string]RefreshKind{
	"invalid_grant":           RefreshRejected,  // the refresh token is dead: used, revoked or expired
	"temporarily_unavailable": RefreshTransient, // RFC 6749 §4.1.2.1, sent by some servers with 400
	"server_error":            RefreshTransient,
	"slow_down":               RefreshTransient, // RFC 8628 §3.5
	"use_dpop_nonce":          RefreshTransient, // RFC 9449 §8: retry with the nonce; the grant is fine
	// A well-formed refresh is never an invalid request: servers use it for
	// their own trouble (Ory Hydra: "multiple concurrent requests using the
	// same token. Please retry the request."). Only invalid_grant says the
	// refresh token is dead; ending a live session on anything else loses it.
	"invalid_request": RefreshTransient,
	// The client, not the token: keep the token, fix the configuration.
	"invalid_client":         RefreshMisconfigured,
	"unauthorized_client":    RefreshMisconfigured,
	"unsupported_grant_type": RefreshMisconfigured,
	"invalid_scope":          RefreshMisconfigured,
	"invalid_target":         RefreshMisconfigured, // RFC 8707: an audience or resource the server does not serve
}

// statusKind is the kind of a status whose body named no code of codeKinds:
// 400, 401 and 403 refuse the grant (or the client) and end the session;
// anything else (429, 5xx, an odd 404 from a misrouted proxy) may pass.
func statusKind(status int) RefreshKind {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return RefreshRejected
	}
	return RefreshTransient
}

// kindOf is the table: the code decides when it is one we know, else the status.
func kindOf(status int, code string) RefreshKind {
	if k, ok := codeKinds[code]; ok {
		return k
	}
	return statusKind(status)
}

// refusalError is the *RefreshError of a non-2xx token-endpoint answer.
func refusalError(op string, status int, header http.Header, body []byte) *RefreshError {
	e := &RefreshError{Op: op, StatusCode: status}
	var oauthErr struct {
		Error       any    `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	if json.Unmarshal(body, &oauthErr) == nil {
		if code, ok := oauthErr.Error.(string); ok {
			e.Code = serverText(code, 100)
		}
		e.Description = serverText(firstNonEmpty(oauthErr.Description, oauthErr.Message), 300)
	}
	e.Kind = kindOf(status, e.Code)
	e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
	return e
}

// asRefreshError is the error boundary of a refresh: whatever a Refresher
// returned becomes a *RefreshError. A plain error counts as transient.
func asRefreshError(err error) *RefreshError {
	var re *RefreshError
	if errors.As(err, &re) {
		return re
	}
	return &RefreshError{Kind: RefreshTransient, Err: err}
}

// cancelled is the error of a caller whose context ended while it waited.
func cancelled(ctx context.Context) error {
	return &RefreshError{Kind: RefreshCancelled, Err: context.Cause(ctx)}
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date, capped at a day.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return time.Duration(min(secs, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// serverText is text a server sent, made safe to print and short: line
// breaks and tabs become spaces; control characters (C0, DEL, C1: a
// terminal's escape sequences, which could retitle a window, clear the
// screen or write the clipboard), bidirectional overrides and invalid UTF-8
// are dropped; at most n runes are kept.
func serverText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case !visible(r):
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return s
}

// printable reports whether s holds only characters serverText keeps as
// they are: nothing that steers a terminal, no line break.
func printable(s string) bool {
	for _, r := range s {
		if !visible(r) || r == '\t' {
			return false
		}
	}
	return true
}

// visible reports whether r prints as itself: not a control character
// (but tab), not a format character such as a bidirectional override, not
// invalid UTF-8.
func visible(r rune) bool {
	return r == '\t' || !(unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
