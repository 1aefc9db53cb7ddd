package authrefresh

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSessionExpired means the refresh token was rejected (or the session was
// ended elsewhere): nothing but a new Login helps. Every caller waiting on the
// failed refresh, and every later call until Login, gets an error for which
// errors.Is(err, ErrSessionExpired) holds, without any network traffic.
var ErrSessionExpired = errors.New("authrefresh: session expired, log in again")

// ErrNotLoggedIn means the Session has no token: its store is empty and Login
// was never called, or Logout was.
var ErrNotLoggedIn = errors.New("authrefresh: not logged in")

// ErrRefreshRejected matches (with errors.Is) a RefreshError of kind
// RefreshRejected: the server refused the refresh token itself.
var ErrRefreshRejected = errors.New("authrefresh: refresh token rejected")

// ErrRefreshTransient matches (with errors.Is) a RefreshError of kind
// RefreshTransient: the refresh failed for a reason that may pass.
var ErrRefreshTransient = errors.New("authrefresh: refresh failed transiently")

// ErrBodyNotReplayable is wrapped by the error a Transport returns when a
// request was refused but its body could not be sent a second time.
var ErrBodyNotReplayable = errors.New("authrefresh: request body cannot be replayed")

// RefreshKind tells apart the outcomes of a failed refresh.
type RefreshKind int

const (
	// RefreshTransient failures (network errors, timeouts, 5xx, 429, malformed
	// answers) keep the session; the next attempt waits for a backoff.
	RefreshTransient RefreshKind = iota
	// RefreshRejected failures (400/401/403, invalid_grant) end the session.
	RefreshRejected
)

func (k RefreshKind) String() string {
	if k == RefreshRejected {
		return "rejected"
	}
	return "transient"
}

// RefreshError is the error of a failed refresh. Refreshers return it so the
// Session can tell a dead refresh token from a passing failure; a plain error
// from a RefreshFunc counts as transient, so that nobody is logged out by an
// unclassified hiccup.
type RefreshError struct {
	Kind RefreshKind
	// StatusCode is the refresh endpoint's HTTP status, 0 if none was received.
	StatusCode int
	// Code is the RFC 6749 §5.2 error code ("invalid_grant"), if any.
	Code string
	// Description is the server's human-readable explanation, if any.
	Description string
	// RetryAfter is the server's Retry-After, if any; the backoff honours it.
	RetryAfter time.Duration
	// Err is the underlying cause, if any.
	Err error
}

func (e *RefreshError) Error() string {
	msg := "authrefresh: refresh " + e.Kind.String()
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" [%d]", e.StatusCode)
	}
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *RefreshError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRefreshRejected) and
// errors.Is(err, ErrRefreshTransient) work.
func (e *RefreshError) Is(target error) bool {
	return (target == ErrRefreshRejected && e.Kind == RefreshRejected) ||
		(target == ErrRefreshTransient && e.Kind == RefreshTransient)
}

// Rejected wraps err as a RefreshRejected error, for use in a RefreshFunc.
func Rejected(err error) error { return &RefreshError{Kind: RefreshRejected, Err: err} }

// Transient wraps err as a RefreshTransient error, for use in a RefreshFunc.
func Transient(err error) error { return &RefreshError{Kind: RefreshTransient, Err: err} }

// refreshKind classifies any error a Refresher returned.
func refreshKind(err error) RefreshKind {
	var re *RefreshError
	if errors.As(err, &re) {
		return re.Kind
	}
	return RefreshTransient
}

// sessionExpiredError carries the rejection that ended a session while
// matching ErrSessionExpired.
type sessionExpiredError struct{ cause error }

func (e *sessionExpiredError) Error() string {
	if e.cause == nil {
		return ErrSessionExpired.Error()
	}
	return ErrSessionExpired.Error() + ": " + e.cause.Error()
}

func (e *sessionExpiredError) Unwrap() []error { return []error{ErrSessionExpired, e.cause} }

// backoffError is returned while a transient failure's backoff lasts.
type backoffError struct {
	last  error
	until time.Time
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("authrefresh: refresh backing off until %s after: %v", e.until.Format(time.RFC3339Nano), e.last)
}

func (e *backoffError) Unwrap() error { return e.last }

// scrubbedError is an error from user code (a Refresher, a panic) whose
// message quoted a token: the message hides it, errors.Is and errors.As
// still see the original.
type scrubbedError struct {
	err error
	msg string
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubSecrets hides toks' secrets in err's message.
func scrubSecrets(err error, toks ...*Token) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := scrubString(msg, toks...); clean != msg {
		return &scrubbedError{err: err, msg: clean}
	}
	return err
}

// scrubString replaces every access and refresh token of toks in s.
func scrubString(s string, toks ...*Token) string {
	for _, t := range toks {
		if t == nil {
			continue
		}
		for _, secret := range []string{t.AccessToken, t.RefreshToken} {
			if len(secret) >= 8 { // shorter strings are not secrets worth the false positives
				s = strings.ReplaceAll(s, secret, "[redacted]")
			}
		}
	}
	return s
}
