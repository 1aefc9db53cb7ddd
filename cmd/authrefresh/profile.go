package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/authrefresh/authrefresh"
)

// profile is what `login` remembers about a server, next to its token file.
type profile struct {
	URL       string `json:"url"`        // the auth server, e.g. http://127.0.0.1:8080
	API       string `json:"api"`        // base URL that request paths are relative to
	Refresh   string `json:"refresh"`    // refresh endpoint
	Logout    string `json:"logout"`     // logout (revocation) endpoint
	Username  string `json:"username"`   // for display only
	TokenFile string `json:"token_file"` // the FileStore
}

var profileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// configDir is $AUTHREFRESH_CONFIG_DIR, else os.UserConfigDir()/authrefresh.
func configDir() (string, error) {
	if d := os.Getenv("AUTHREFRESH_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config directory (set AUTHREFRESH_CONFIG_DIR): %w", err)
	}
	return filepath.Join(d, "authrefresh"), nil
}

func profilePath(name string) (string, error) {
	if !profileName.MatchString(name) {
		return "", usageError{fmt.Sprintf("invalid profile name %q (letters, digits, . _ -)", name)}
	}
	dir, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name+".profile.json"), nil
}

func newProfile(name, server, api string) (*profile, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("--url %q is not an http(s) URL", server)}
	}
	base := strings.TrimRight(server, "/")
	if api == "" {
		api = base + "/api/v1/"
	}
	dir, err := configDir()
	if err != nil {
		return nil, err
	}
	return &profile{URL: base, API: api, Refresh: base + "/auth/refresh", Logout: base + "/auth/logout", TokenFile: filepath.Join(dir, name+".token.json")}, nil
}

func loadProfile(name string) (*profile, error) {
	path, err := profilePath(name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no profile %q; run: authrefresh login --url URL --profile %s", authrefresh.ErrNotLoggedIn, name, name)
	}
	if err != nil {
		return nil, err
	}
	var p profile
	if err := json.Unmarshal(data, &p); err != nil || p.URL == "" || p.TokenFile == "" {
		return nil, fmt.Errorf("profile file %s is corrupted; run authrefresh login again", path)
	}
	return &p, nil
}

func saveProfile(name string, p *profile) error {
	path, err := profilePath(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(p, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// session opens the profile's Session on its FileStore: processes sharing a
// profile refresh once between them (flock).
func (p *profile) session() *authrefresh.Session {
	return authrefresh.NewSession(authrefresh.NewFileStore(p.TokenFile),
		&authrefresh.JSONRefresher{URL: p.Refresh, LogoutURL: p.Logout}, authrefresh.Options{})
}
