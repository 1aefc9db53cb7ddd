package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/oauth"
	"github.com/authrefresh/authrefresh/seal"
)

// explain is the CLI's one error boundary: the exit code of err, and the
// sentence that says what happened to the user (not to the library), with
// one hint of what to do. The codes derive from the library's error kinds.
func explain(err error) (code int, msg string) {
	var (
		usage     usageError
		failure   *httpFailure
		login     *loginError
		inProfile *profileError
		fileErr   *filestore.Error
		re        *authrefresh.RefreshError
		notSaved  *unsavedError
		keys      *keyringError
		sealed    *seal.Error
		discovery *oauth.DiscoveryError
		authz     *oauth.AuthorizationError
		output    *outputError
		chain     *keychainError
	)
	loginCmd := "authrefresh login --url URL"
	if errors.As(err, &inProfile) {
		loginCmd = inProfile.loginCommand()
	}
	switch {
	case errors.As(err, &usage):
		return exitUsage, "authrefresh: " + usage.msg
	case errors.As(err, &failure):
		return exitHTTP, failure.Error()
	case errors.As(err, &login) && errors.As(err, &re) && re.Kind == authrefresh.RefreshRejected:
		return exitLogin, fmt.Sprintf("wrong username or password for %s%s", login.url, serverSaid(re))
	case errors.As(err, &authz):
		return authorizationExit(authz)
	case errors.Is(err, authrefresh.ErrRefreshMisconfigured):
		return exitConfig, "the auth server does not accept this client: " + safetext.Message(err) + "\ncheck the client id, secret or key, the grant and the scopes"
	case errors.As(err, &login) && errors.As(err, &re) && re.StatusCode != 0 && (re.StatusCode < 500 || re.StatusCode == http.StatusNotImplemented) && re.StatusCode != http.StatusTooManyRequests:
		return exitConfig, fmt.Sprintf("%s is not a login endpoint: it answered %d %s; check --url and --login-path (the login endpoint is URL/auth/login unless --login-path says otherwise)", login.url, re.StatusCode, http.StatusText(re.StatusCode))
	case errors.As(err, &notSaved):
		return exitConfig, "the request went through, but the refreshed token could not be saved: " + safetext.Message(notSaved.err) +
			"\nthe token file still holds the previous one, which the server may have retired: fix the store (free disk space, make it writable), or the next command will ask you to " + loginCmd
	case errors.Is(err, authrefresh.ErrSessionExpired):
		return exitLogin, "the session expired" + expiredBecause(err) + "\nlog in again: " + loginCmd
	case errors.Is(err, authrefresh.ErrNotLoggedIn):
		return exitLogin, safetext.Message(err) + "\nlog in: " + loginCmd
	case errors.As(err, &keys):
		return exitConfig, "cannot use the seal keys: " + safetext.Message(keys) + "\n(--seal-key FILE, or --seal-key env with $" + keyringEnv + "; create one with: authrefresh seal-key FILE)"
	case errors.As(err, &sealed):
		return exitConfig, "cannot open the stored token: " + sealed.Reason + "\nfix the seal keys (--seal-key), or log in again: " + loginCmd
	case errors.As(err, &output):
		return exitConfig, safetext.Message(output) + "\ncheck that its directory exists and is writable"
	case errors.As(err, &chain):
		return exitConfig, "cannot use " + safetext.Message(chain) + "\nunlock it, or log in again without --keychain to keep the token in a 0600 file: " + loginCmd
	case errors.As(err, &fileErr):
		return exitConfig, "cannot use the token file: " + safetext.Message(fileErr)
	case errors.As(err, &discovery) && !errors.Is(err, authrefresh.ErrRefreshTransient) && !isNetworkError(err):
		return exitConfig, safetext.Message(err) + "\ncheck --issuer: it must be the provider's issuer URL exactly"
	case errors.Is(err, syscall.EADDRINUSE):
		return exitConfig, "the address is already in use by another program: " + safetext.Message(err) + "\nchoose another (serve --addr, proxy --listen; port 0 takes any free one)"
	case plainHTTPServer(err):
		return exitConfig, "the server speaks plain HTTP, not HTTPS: " + safetext.Message(err) + "\nuse an http:// URL for it"
	case unknownHost(err):
		return exitConfig, "no such host: " + safetext.Message(err) + "\ncheck the host name in the URL"
	case errors.Is(err, authrefresh.ErrRefreshTransient), isNetworkError(err):
		return exitNetwork, "could not reach the server, or it is failing for now: " + safetext.Message(err) + "\nnothing was lost; try again later"
	}
	return exitFailure, "authrefresh: " + safetext.Message(err)
}

// unsavedError is a renewed token the store did not take.
type unsavedError struct{ err error }

func (e *unsavedError) Error() string {
	return "the refreshed token could not be saved: " + e.err.Error()
}
func (e *unsavedError) Unwrap() error { return e.err }

// loginError is a failed login call to url.
type loginError struct {
	url string
	err error
}

func (e *loginError) Error() string { return "could not log in to " + e.url + ": " + e.err.Error() }
func (e *loginError) Unwrap() error { return e.err }

// profileError is a failure while using profile name (at URL); login is
// the command that logs in to it again, when known.
type profileError struct {
	name, url, login string
	err              error
}

func (e *profileError) Error() string { return e.err.Error() }
func (e *profileError) Unwrap() error { return e.err }

// loginCommand is the command that logs in to the profile again.
func (e *profileError) loginCommand() string {
	if e.login != "" {
		return e.login
	}
	cmd := "authrefresh login --url " + e.url
	if e.name != "default" {
		cmd += " --profile " + e.name
	}
	return cmd
}

// inProfile attributes err (if any) to profile p called name.
func inProfile(name string, p *profile, err error) error {
	if err == nil || p == nil {
		return err
	}
	return &profileError{name: name, url: p.URL, login: p.loginCommand(name), err: err}
}

// expiredBecause is the server's reason for ending the session, if it gave one.
func expiredBecause(err error) string {
	var re *authrefresh.RefreshError
	if !errors.As(err, &re) {
		return ""
	}
	return serverSaid(re)
}

func serverSaid(re *authrefresh.RefreshError) string {
	if why := firstNonEmpty(re.Description, re.Code); why != "" {
		return " (the server said: " + safetext.Lines(why) + ")"
	}
	return ""
}

// plainHTTPServer reports an https URL answered in plain HTTP: the user's
// URL, not the network. net/http reports it only in its text (after a
// tls.RecordHeaderError), so the text is matched here, once.
func plainHTTPServer(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// unknownHost reports a host name that does not resolve: a typo far more
// often than an outage.
func unknownHost(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

// isNetworkError reports a failure to reach a server.
func isNetworkError(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	return errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout())
}

// authorizationExit explains a browser or device login that ended without
// a token: the user's doing (exit 4: log in again) or the settings' (6).
func authorizationExit(e *oauth.AuthorizationError) (int, string) {
	said := ""
	if e.Description != "" {
		said = " (" + e.Description + ")"
	}
	switch e.Code {
	case "access_denied":
		return exitLogin, "the " + e.Flow + " login was denied at the provider" + said + "\nrun login again and approve it"
	case "expired_token", "timeout":
		return exitLogin, "the " + e.Flow + " login was not completed in time" + said + "\nrun login again"
	case "state_mismatch", "nonce_mismatch", "issuer_mismatch":
		return exitLogin, "the " + e.Flow + " login came back with an answer that is not its own: " + e.Code + said + "\nrun login again (one login at a time)"
	}
	return exitConfig, "the provider refused the " + e.Flow + " login: " + e.Code + said + "\ncheck --client-id, --scope, --redirect-url and the client's settings at the provider"
}
