package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// dockerHelperName is the name docker gives its credential helper for
// "credsStore": "authrefresh" (or "credHelpers"): a link to this program
// by that name runs runDockerCredential.
const dockerHelperName = "docker-credential-authrefresh"

// errDockerNotFound is the message docker's helper client reads as "no
// credentials for this registry" (credentials.ErrCredentialsNotFound).
const errDockerNotFound = "credentials not found in native keychain"

// runDockerCredential is docker's credential helper protocol: get (the
// registry on stdin, a JSON credential out), list, store and erase. get
// answers the profile's access token ($AUTHREFRESH_PROFILE, else
// "default") only for the profile's API host; other registries are "not
// found", so docker falls back to its other credentials. store refuses
// (the token comes from the profile, not from docker login), erase is a
// no-op.
func runDockerCredential(ctx context.Context, args []string, o stdio) error {
	if len(args) != 1 {
		return usageError{"docker-credential: want one action: get, store, erase or list (docker passes it)"}
	}
	name := firstNonEmpty(os.Getenv("AUTHREFRESH_PROFILE"), "default")
	switch args[0] {
	case "erase":
		_, err := io.Copy(io.Discard, io.LimitReader(o.in, 64<<10))
		return err
	case "store":
		return dockerError{"authrefresh does not store registry passwords: the profile's token is used (authrefresh login)"}
	case "get", "list":
	default:
		return usageError{fmt.Sprintf("docker-credential: unknown action %q", args[0])}
	}
	p, session, closeStore, err := openProfile(name)
	if err != nil {
		return inProfile(name, p, err)
	}
	defer closeStore()
	api, err := url.Parse(p.API)
	if err != nil {
		return err
	}
	user := firstNonEmpty(p.Username, "oauth2")
	if args[0] == "list" {
		return json.NewEncoder(o.out).Encode(map[string]string{api.Scheme + "://" + api.Host: user})
	}
	raw, err := io.ReadAll(io.LimitReader(o.in, 64<<10))
	if err != nil {
		return err
	}
	registry := strings.TrimSpace(string(raw))
	if !sameRegistry(registry, api) {
		return dockerError{errDockerNotFound}
	}
	tok, err := session.Token(ctx)
	if err != nil {
		return inProfile(name, p, err)
	}
	if err := bearerOnly(name, tok); err != nil {
		return dockerError{err.Error()}
	}
	if err := json.NewEncoder(o.out).Encode(map[string]string{"ServerURL": registry, "Username": user, "Secret": tok.AccessToken}); err != nil {
		return err
	}
	return unsaved(name, p, session)
}

// sameRegistry reports whether docker's registry (a URL, or a bare
// host[:port] as docker often names it) is api's host.
func sameRegistry(registry string, api *url.URL) bool {
	if !strings.Contains(registry, "://") {
		registry = api.Scheme + "://" + registry
	}
	u, err := url.Parse(registry)
	return err == nil && u.Scheme == api.Scheme && strings.EqualFold(withPort(u.Host, u.Scheme), withPort(api.Host, api.Scheme))
}

// dockerError is a helper failure whose text docker's client reads as is:
// printed alone on stdout, exit 1.
type dockerError struct{ msg string }

func (e dockerError) Error() string { return e.msg }
