package authrefresh

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh/internal/safetext"
)

var (
	// ErrSessionExpired means the refresh token was rejected (or the session was
	// ended elsewhere): nothing but a new Login helps. Every caller waiting on the
	// failed refresh, and every later call until Login, gets an error for which
	// errors.Is(err, ErrSessionExpired) holds, without any network traffic.
	// errors.As(err, **RefreshError) gives the server's answer that ended it.
	ErrSessionExpired = errors.New("authrefresh: session expired, log in again")

	// ErrNotLoggedIn means the Session has no token: its store is empty and Login
	// was never called, or Logout was.
	ErrNotLoggedIn = errors.New("authrefresh: not logged in")

	// ErrRefreshRejected matches (with errors.Is) a RefreshError of kind
	// RefreshRejected: the server refused the refresh token (or the login).
	ErrRefreshRejected = errors.New("authrefresh: refresh token rejected")

	// ErrRefreshTransient matches (with errors.Is) a RefreshError of kind
	// RefreshTransient: the refresh failed for a reason that may pass.
	ErrRefreshTransient = errors.New("authrefresh: refresh failed transiently")

	// ErrRefreshMisconfigured matches (with errors.Is) a RefreshError of kind
	// RefreshMisconfigured: the server refused the client, not the token.
	ErrRefreshMisconfigured = errors.New("authrefresh: the auth server refused the client's configuration")

	// ErrRefreshCancelled matches (with errors.Is) a RefreshError of kind
	// RefreshCancelled: the caller's context ended while it waited for a refresh.
	// The refresh itself goes on for the other callers.
	ErrRefreshCancelled = errors.New("authrefresh: stopped waiting for the token refresh")

	// ErrBodyNotReplayable is wrapped by the error a Transport returns when a
	// request was refused but its body could not be sent a second time.
	ErrBodyNotReplayable = errors.New("authrefresh: request body cannot be replayed")

	// ErrNoProver is the error of a request whose token is bound to a key
	// with DPoP (token type "DPoP") when the Session's Refresher is not a
	// Prover: the token is never sent without its proof, as a bearer
	// token. Set a DPoP key on the oauth.Config that refreshes it.
	ErrNoProver = errors.New("authrefresh: the token is bound to a DPoP key and the Session's Refresher cannot sign DPoP proofs (set oauth.Config.DPoP)")

	// ErrFreshTokenRefused is wrapped by the *NotReplayedError of a refusal of a
	// token that was obtained moments ago because the server refused its
	// predecessor, and that the server has not accepted since. The Session does
	// not refresh again at once: a server that refuses every fresh token (wrong
	// audience or scopes, a skewed clock, a revoked client) would otherwise be
	// asked for a new token on every request.
	ErrFreshTokenRefused = errors.New("authrefresh: the server refused a token issued moments ago in place of a refused one; not refreshing again yet (check the token's audience and scopes, and the clocks)")
)

// RefreshKind tells apart the outcomes of a failed refresh.
type RefreshKind int

const (
	// RefreshTransient failures (network errors, timeouts, 5xx, 429, malformed
	// answers, errors a custom Refresher did not classify) keep the session;
	// the next attempt waits for a backoff.
	RefreshTransient RefreshKind = iota
	// RefreshRejected failures (400/401/403, invalid_grant) end the session.
	RefreshRejected
	// RefreshCancelled means the caller stopped waiting (its context ended);
	// the session and the refresh in flight are unaffected.
	RefreshCancelled
	// RefreshMisconfigured failures are the server refusing the client,
	// not the token (invalid_client, unauthorized_client,
	// unsupported_grant_type, invalid_scope): a wrong client id, secret or
	// key, a grant or scope the client may not use. The session and its
	// refresh token are kept, nothing is cleared, and attempts go on after
	// a backoff, so that fixing the configuration heals it.
	RefreshMisconfigured
	// RefreshStoreUnreadable failures are the stored record's, not the
	// server's: the record is there and cannot be read as a token
	// (corrupted, altered, sealed with a key the keyring lacks, plain where
	// only sealed records are accepted; errors.Is(err, ErrStoreCorrupt)).
	// It does not pass by itself, so it is not counted as transient.
	// Nothing is refreshed and nothing is overwritten (a process with the
	// right keyring may still read the record); attempts go on after a
	// short backoff, so that the fix — a new login, or the keyring that
	// sealed it — heals it.
	RefreshStoreUnreadable
)

// String returns "transient", "rejected", "cancelled", "misconfigured" or
// "store-unreadable".
func (k RefreshKind) String() string {
	switch k {
	case RefreshRejected:
		return "rejected"
	case RefreshCancelled:
		return "cancelled"
	case RefreshMisconfigured:
		return "misconfigured"
	case RefreshStoreUnreadable:
		return "store-unreadable"
	}
	return "transient"
}

// RefreshError is the error of every failed refresh, and of the login calls
// of this package. Its Kind is decided in one place, from the table in
// internal/tokenhttp, for every refresher; a custom Refresher may return one (see
// Rejected and Transient), and any other error it returns is wrapped as a
// RefreshTransient one, so that nobody is logged out by an unclassified
// hiccup.
type RefreshError struct {
	Kind RefreshKind
	// Op is what failed, one of:
	//   - "refresh" (also the zero value): renewing the token;
	//   - "login": a login's token request (password, browser, device);
	//   - "acquire": a client_credentials token (oauth.ClientCredentials);
	//   - "revoke": revoking a token at logout;
	//   - "discovery": reading a provider's metadata (oauth.Discover).
	Op string
	// StatusCode is the endpoint's HTTP status, 0 if none was received.
	StatusCode int
	// Code is the RFC 6749 §5.2 error code ("invalid_grant"), if any.
	Code string
	// Description is the server's human-readable explanation, if any.
	Description string
	// RetryAfter is the server's Retry-After, if any; the backoff honours it.
	RetryAfter time.Duration
	// Err is the underlying cause, if any.
	Err error

	// local marks a failure of the store (its lock, a read), not of the auth
	// server: its backoff stays short, since retrying costs the auth server
	// nothing.
	local bool
}

// Error says what failed and why, never quoting a token.
func (e *RefreshError) Error() string {
	op := e.Op
	if op == "" {
		op = "refresh"
	}
	var b strings.Builder
	b.WriteString("authrefresh: ")
	switch e.Kind {
	case RefreshRejected:
		b.WriteString(op + " rejected by the auth server")
	case RefreshCancelled:
		b.WriteString("stopped waiting for the token " + op)
	case RefreshMisconfigured:
		b.WriteString(op + " refused: the auth server does not accept this client's configuration (its id, secret or key, grant or scopes)")
		if op == "refresh" {
			b.WriteString("; the token is kept")
		}
	case RefreshStoreUnreadable:
		b.WriteString("the token store's record cannot be read, and will not be overwritten: log in again to replace it, or configure the keyring that sealed it")
	default:
		b.WriteString(op + " failed, may pass")
	}
	var why []string
	if e.StatusCode != 0 {
		why = append(why, fmt.Sprintf("status %d", e.StatusCode))
	}
	if e.Code != "" {
		why = append(why, safetext.Clip(e.Code, 100))
	}
	if e.Description != "" {
		why = append(why, safetext.Clip(e.Description, 300))
	}
	if e.Err != nil {
		why = append(why, e.Err.Error())
	}
	if len(why) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(why, ": "))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *RefreshError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRefreshRejected), ErrRefreshTransient,
// ErrRefreshCancelled and ErrRefreshMisconfigured answer by Kind.
func (e *RefreshError) Is(target error) bool {
	switch target {
	case ErrRefreshMisconfigured:
		return e.Kind == RefreshMisconfigured
	case ErrRefreshRejected:
		return e.Kind == RefreshRejected
	case ErrRefreshTransient:
		return e.Kind == RefreshTransient
	case ErrRefreshCancelled:
		return e.Kind == RefreshCancelled
	case ErrStoreCorrupt:
		return e.Kind == RefreshStoreUnreadable
	}
	return false
}

// Rejected wraps err as a RefreshRejected error, for use in a RefreshFunc.
func Rejected(err error) error { return &RefreshError{Kind: RefreshRejected, Err: err} }

// Transient wraps err as a RefreshTransient error, for use in a RefreshFunc.
func Transient(err error) error { return &RefreshError{Kind: RefreshTransient, Err: err} }

// NotReplayedError is returned when the server refused a request's token and the
// request was not replayed: its body was a stream longer than the replay
// buffer (the refresh itself happened, so the next request carries the new
// token; Err wraps ErrBodyNotReplayable), or the refused token was itself
// issued moments ago in place of a refused one (Err wraps
// ErrFreshTokenRefused; such refreshes are spaced like a backoff:
// Options.MinBackoff, doubling, capped at MaxBackoff).
type NotReplayedError struct {
	// StatusCode is the refusing response's status; 0 when the refusal was
	// reported to Session.Refused by other code than a Transport.
	StatusCode int
	Err        error
}

// Error says that the request was refused and why it was not replayed.
func (e *NotReplayedError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("authrefresh: token refused: %v", e.Err)
	}
	return fmt.Sprintf("authrefresh: request refused with status %d and not replayed: %v", e.StatusCode, e.Err)
}

// Unwrap returns the cause, ErrBodyNotReplayable or ErrFreshTokenRefused.
func (e *NotReplayedError) Unwrap() error { return e.Err }

// sessionExpiredError carries the rejection that ended a session while
// matching ErrSessionExpired.
type sessionExpiredError struct {
	cause error
	dead  *Token // the token whose refresh was rejected
}

// deadToken is the token an expiry error ended with, else fallback.
func deadToken(err error, fallback *Token) *Token {
	var se *sessionExpiredError
	if errors.As(err, &se) && se.dead != nil {
		return se.dead
	}
	return fallback
}

func (e *sessionExpiredError) Error() string {
	if e.cause == nil {
		return ErrSessionExpired.Error()
	}
	return ErrSessionExpired.Error() + ": " + strings.TrimPrefix(e.cause.Error(), "authrefresh: ")
}

func (e *sessionExpiredError) Unwrap() []error { return []error{ErrSessionExpired, e.cause} }

// backoffError is returned while a transient failure's backoff lasts. It
// unwraps to that failure, a *RefreshError of kind RefreshTransient.
type backoffError struct {
	last  error
	until time.Time
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("authrefresh: not retrying the token refresh before %s, after: %s", e.until.Format(time.RFC3339Nano), strings.TrimPrefix(e.last.Error(), "authrefresh: "))
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
