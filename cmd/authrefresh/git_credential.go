package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/authrefresh/authrefresh"
)

// runGitCredential is git's credential helper protocol (gitcredentials(7)):
// git runs it with get, store or erase and key=value lines on stdin. For a
// request to the profile's API (same scheme, host and port), get answers the
// profile's access token as the password, refreshed if need be, with its
// expiry; any other host gets no answer, so the token never goes elsewhere.
// erase, which git sends when the server refused the password, refreshes
// if that password is still the profile's token. store is a no-op: the
// token lives in the profile.
func runGitCredential(ctx context.Context, args []string, o stdio) error {
	fs := newFlagSet("git-credential", `git's credential helper: for requests to the profile's API host, the profile's access
token is the password (username: the profile's, else oauth2), refreshed before it
expires; a refused one (git's erase) is refreshed once. Other hosts get nothing.`, `  git config --global credential.https://git.example.com.helper '!authrefresh git-credential --profile git'
  git clone https://git.example.com/team/repo.git
`, o.err)
	name := profileFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return flagError(fs, "want one action: get, store or erase (git passes it)")
	}
	action := fs.Arg(0)
	asked, err := readCredential(o.in)
	if err != nil {
		return err
	}
	switch action {
	case "store":
		return nil
	case "get", "erase":
	default:
		return nil // gitcredentials(7): ignore actions this helper does not know
	}
	p, session, closeStore, err := openProfile(*name)
	if err != nil {
		return inProfile(*name, p, err)
	}
	defer closeStore()
	api, err := url.Parse(p.API)
	if err != nil || !sameHost(asked, api) {
		return nil // not this profile's host: say nothing, git asks elsewhere
	}
	if action == "erase" {
		if asked["password"] == "" {
			return nil
		}
		current, err := session.Token(ctx)
		if err != nil || current.AccessToken != asked["password"] {
			return inProfile(*name, p, err) // already replaced: nothing to do
		}
		_, err = session.Refused(ctx, current)
		return inProfile(*name, p, unsavedOr(err, *name, p, session))
	}
	tok, err := session.Token(ctx)
	if err != nil {
		return inProfile(*name, p, err)
	}
	if err := bearerOnly(*name, tok); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "username=%s\npassword=%s\n", firstNonEmpty(p.Username, "oauth2"), tok.AccessToken)
	if !tok.Expiry.IsZero() {
		fmt.Fprintf(o.out, "password_expiry_utc=%d\n", tok.Expiry.Unix()) // git 2.41+: not used past this time
	}
	return unsaved(*name, p, session)
}

// unsavedOr is err, else the error of a renewed token not saved.
func unsavedOr(err error, name string, p *profile, s *authrefresh.Session) error {
	if err != nil {
		return err
	}
	return unsaved(name, p, s)
}

// readCredential reads git's key=value lines, up to a blank line or the end.
func readCredential(r io.Reader) (map[string]string, error) {
	attrs := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			attrs[k] = v
		}
	}
	return attrs, sc.Err()
}

// sameHost reports whether git's request is for api's scheme and
// host:port (git leaves out the scheme's own port).
func sameHost(asked map[string]string, api *url.URL) bool {
	return asked["protocol"] == api.Scheme && strings.EqualFold(withPort(asked["host"], api.Scheme), withPort(api.Host, api.Scheme))
}

// withPort is host with the scheme's port when it names none.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
