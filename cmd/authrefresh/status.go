package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/safetext"
)

// profileStatus is what status says of one profile. It never holds a
// token: only what the user needs to know which session is which, and
// whether it still works.
type profileStatus struct {
	Profile        string `json:"profile"`
	Provider       string `json:"provider"`
	Flow           string `json:"flow"`
	API            string `json:"api,omitempty"`
	Identity       string `json:"identity,omitempty"`
	State          string `json:"state"` // "valid", "expired" (refreshed on next use), "not logged in", or why it cannot be read
	AccessExpires  string `json:"access_expires,omitempty"`
	RefreshExpires string `json:"refresh_expires,omitempty"`
	Store          string `json:"store"`
	Sealed         bool   `json:"sealed"`
	Binding        string `json:"binding,omitempty"` // "DPoP" for a token bound to a key kept with it
}

// runStatus prints the profiles and their sessions, reading the stores
// only: nothing is refreshed and nothing is sent.
func runStatus(ctx context.Context, args []string, o stdio) error {
	fs := newFlagSet("status", "Show the profiles: their provider, flow, identity, when the access and refresh\ntokens expire, where the token is kept and whether it is sealed. Reads the stores\nonly: nothing is refreshed, no token is printed.", `  authrefresh status
  authrefresh status --profile work
  authrefresh status --output json
`, o.err)
	name := fs.String("profile", "", "only this profile (default: every profile)")
	output := fs.String("output", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return flagError(fs, fmt.Sprintf("--output %q: want text or json", *output))
	}
	names := []string{*name}
	if *name == "" {
		dir, err := configDir()
		if err != nil {
			return err
		}
		found, _ := filepath.Glob(filepath.Join(dir, "*.profile.json"))
		names = names[:0]
		for _, f := range found {
			names = append(names, strings.TrimSuffix(filepath.Base(f), ".profile.json"))
		}
		sort.Strings(names)
		if len(names) == 0 {
			return fmt.Errorf("%w: no profiles in %s", authrefresh.ErrNotLoggedIn, dir)
		}
	}
	var all []profileStatus
	for _, n := range names {
		p, err := loadProfile(n)
		if err != nil {
			return inProfile(n, p, err)
		}
		all = append(all, statusOf(ctx, n, p))
	}
	if *output == "json" {
		enc := json.NewEncoder(o.out)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	for i, st := range all {
		if i > 0 {
			fmt.Fprintln(o.out)
		}
		fmt.Fprintf(o.out, "%s: %s\n", st.Profile, safetext.Lines(st.State))
		for _, kv := range [][2]string{{"provider", st.Provider}, {"flow", st.Flow}, {"api", st.API}, {"identity", st.Identity},
			{"access token expires", st.AccessExpires}, {"refresh token expires", st.RefreshExpires}, {"bound to a key", st.Binding}, {"store", st.Store}} {
			if kv[1] != "" {
				fmt.Fprintf(o.out, "  %-22s %s\n", kv[0]+":", safetext.Lines(kv[1]))
			}
		}
		fmt.Fprintf(o.out, "  %-22s %v\n", "sealed:", st.Sealed)
	}
	if *name != "" && all[0].State == "not logged in" {
		return inProfile(*name, nil, fmt.Errorf("%w: profile %q", authrefresh.ErrNotLoggedIn, *name))
	}
	return nil
}

// statusOf reads profile p's stored token, without refreshing it.
func statusOf(ctx context.Context, name string, p *profile) profileStatus {
	st := profileStatus{Profile: name, Provider: p.URL, Flow: "password (JSON API)", API: p.API, Identity: p.Username, Sealed: p.Keyring != ""}
	if g := p.Client; g != nil {
		st.Provider, st.Flow = cmp.Or(g.Issuer, g.TokenURL), cmp.Or(g.Flow, flowClient)
		if g.machine() {
			st.Identity = "client " + g.ClientID
		}
	}
	st.Store = "file " + p.TokenFile
	if p.Keychain {
		st.Store = "the OS keychain (service " + keychainService + ")"
	}
	if p.Redis != "" {
		st.Store = "redis " + redisShown(p.Redis) + " (session " + p.RedisSession + ")"
	}
	store, closeStore, err := p.store()
	if err != nil {
		st.State = "cannot open the store: " + safetext.Message(err)
		return st
	}
	defer closeStore()
	tok, err := store.Load(ctx)
	switch {
	case err != nil:
		st.State = "cannot read the token: " + safetext.Message(err)
		return st
	case tok == nil:
		st.State = "not logged in"
		return st
	}
	if who := idTokenIdentity(tok.IDToken); who != "" {
		st.Identity = who
	}
	expiry := tok.Expiry
	if expiry.IsZero() && !tok.IssuedAt.IsZero() && tok.ExpiresIn > 0 {
		expiry = tok.IssuedAt.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	st.State = "valid"
	if !expiry.IsZero() {
		st.AccessExpires = expiry.Local().Format(time.RFC3339)
		if !time.Now().Before(expiry) {
			st.State = "expired (refreshed on next use)"
		}
	}
	if strings.EqualFold(tok.TokenType, "DPoP") {
		st.Binding = "DPoP"
		if len(tok.DPoPKey) > 0 {
			st.Binding += " (the key is kept with the token)"
		}
	}
	if !tok.RefreshExpiry.IsZero() {
		st.RefreshExpires = tok.RefreshExpiry.Local().Format(time.RFC3339)
	}
	return st
}

// idTokenIdentity is who an ID token names (email, preferred username,
// name or subject), read without verifying it: for display only.
func idTokenIdentity(idToken string) string {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var c struct {
		Email             string `json:"email"`
		PreferredUsername string `json:"preferred_username"`
		Name              string `json:"name"`
		Sub               string `json:"sub"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return cmp.Or(c.Email, c.PreferredUsername, c.Name, c.Sub)
}

// redisShown is a Redis URL without its password (url.URL.Redacted).
func redisShown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
