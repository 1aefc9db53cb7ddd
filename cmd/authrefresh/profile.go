package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/authrefresh/authrefresh/seal"
	"github.com/redis/go-redis/v9"
)

// profile is what `login` remembers about a server, next to its token file.
type profile struct {
	URL       string `json:"url"`        // the auth server, e.g. http://127.0.0.1:8080
	API       string `json:"api"`        // base URL that request paths are relative to
	Refresh   string `json:"refresh"`    // refresh endpoint
	Logout    string `json:"logout"`     // logout (revocation) endpoint
	Username  string `json:"username"`   // for display only
	TokenFile string `json:"token_file"` // the filestore.Store, unless Redis is set
	// Redis, if set, is a redis:// URL where the token lives instead, under
	// the session name RedisSession: every process and sidecar pointing at it
	// shares one session.
	Redis        string `json:"redis,omitempty"`
	RedisSession string `json:"redis_session,omitempty"`
	// Keyring, if set, seals the token at rest (AES-256-GCM): the path of a
	// 0600 file of seal keys, or "env" for the keys in $AUTHREFRESH_SEAL_KEY.
	// Never the keys themselves.
	Keyring string `json:"keyring,omitempty"`
	// Keychain keeps the token in the OS keychain instead of TokenFile
	// (which then names the item, and its lock file sits beside it).
	Keychain bool `json:"keychain,omitempty"`
	// Client, if set, makes this a machine-to-machine profile: tokens come
	// from the client_credentials grant at any provider's token endpoint
	// (Refresh and Logout are unused).
	Client *clientGrant `json:"client,omitempty"`
	// RetryStatuses are the API's statuses for a refused token (nil: 401,
	// and any status whose WWW-Authenticate says invalid_token).
	RetryStatuses []int `json:"retry_statuses,omitempty"`
}

// retryStatuses are the statuses that make the Transport refresh and
// replay: the profile's, else the library's default.
func (p *profile) retryStatuses() []int {
	if len(p.RetryStatuses) == 0 {
		return nil
	}
	return p.RetryStatuses
}

// loginCommand is the command that logs in to the profile called name
// again.
func (p *profile) loginCommand(name string) string {
	cmd := "authrefresh login --url " + cmp.Or(p.URL, "URL")
	if g := p.Client; g != nil {
		cmd = "authrefresh login --client-id " + g.ClientID
		if g.Issuer != "" {
			cmd += " --issuer " + g.Issuer
		} else {
			cmd += " --token-url " + g.TokenURL
		}
		if !g.machine() {
			cmd += " --flow " + g.Flow
		}
	}
	if p.Username != "" && (p.Client == nil || p.Client.Flow == flowPassword) {
		cmd += " --username " + p.Username // what the profile knows, the command says
	}
	if name != "default" {
		cmd += " --profile " + name
	}
	return cmd
}

// notHTTPURL is the usage error of a flag whose value is no http(s) URL,
// with the likely fix when only the scheme is missing.
func notHTTPURL(flagName, value string) error {
	msg := fmt.Sprintf("%s %q is not an http(s) URL", flagName, value)
	if u, err := url.Parse("http://" + value); err == nil && u.Host != "" && !strings.Contains(value, "://") {
		scheme := "https://"
		if loopback(u.Hostname()) {
			scheme = "http://"
		}
		msg += fmt.Sprintf("; did you mean %s%s?", scheme, value)
	}
	return usageError{msg}
}

// keyringEnv holds the seal keys' text (see seal.ParseKeyring), for
// hosts whose secrets arrive as environment variables.
const keyringEnv = "AUTHREFRESH_SEAL_KEY"

// keyringError is a keyring that cannot be used.
type keyringError struct{ err error }

func (e *keyringError) Error() string { return e.err.Error() }
func (e *keyringError) Unwrap() error { return e.err }

// openKeyring opens the keyring the profile names; nil when none.
func (p *profile) openKeyring() (*seal.Keyring, error) {
	switch p.Keyring {
	case "":
		return nil, nil
	case "env":
		text := os.Getenv(keyringEnv)
		if text == "" {
			return nil, &keyringError{fmt.Errorf("the token is sealed with the keyring in $%s, which is not set", keyringEnv)}
		}
		k, err := seal.ParseKeyring(text)
		if err != nil {
			return nil, &keyringError{fmt.Errorf("$%s: %w", keyringEnv, err)}
		}
		return k, nil
	}
	k, err := seal.ReadKeyring(p.Keyring)
	if err != nil {
		return nil, &keyringError{err}
	}
	return k, nil
}

// useKeychain keeps the profile's token in the OS keychain, when asked
// for (want) and one answers here; else it says why on stderr and the
// token stays in its 0600 file.
func (p *profile) useKeychain(want bool, stderr io.Writer) error {
	if !want {
		return nil
	}
	if p.Redis != "" {
		return usageError{"login: --keychain and --redis each hold the token; choose one"}
	}
	if err := keychainReachable(); err != nil {
		fmt.Fprintf(stderr, "%s: keeping the token in %s (0600) instead\n", safetext.Message(err), p.TokenFile)
		return nil
	}
	p.Keychain = true
	return nil
}

// useKeyring seals the profile's token with the keyring at where (a file,
// or "env"), if asked to, checking that it opens.
func (p *profile) useKeyring(where string) error {
	if where == "" {
		return nil
	}
	if where != "env" {
		abs, err := filepath.Abs(where)
		if err != nil {
			return err
		}
		where = abs
	}
	p.Keyring = where
	_, err := p.openKeyring()
	return err
}

// profileName is what a profile may be called: it names files.
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
		return nil, notHTTPURL("--url", server)
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
		return nil, &profileError{name: name, url: "URL", err: fmt.Errorf("%w: no profile %q", authrefresh.ErrNotLoggedIn, name)}
	}
	if err != nil {
		return nil, err
	}
	var p profile
	if err := json.Unmarshal(data, &p); err != nil || p.URL == "" || p.TokenFile == "" {
		return nil, &profileError{name: name, url: "URL", err: fmt.Errorf("%w: the profile file %s is corrupted", authrefresh.ErrNotLoggedIn, path)}
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

// session opens the profile's Session on its filestore.Store: processes sharing a
// profile refresh once between them (flock).
// With Redis, the returned close function releases the connection.
func (p *profile) session() (*authrefresh.Session, func(), error) {
	store, closeStore, err := p.store()
	if err != nil {
		return nil, nil, err
	}
	var refresher authrefresh.Refresher = &jsonauth.Refresher{URL: p.Refresh, LogoutURL: p.Logout}
	if p.Client != nil {
		cc, err := p.Client.refresher()
		if err != nil {
			closeStore()
			return nil, nil, err
		}
		refresher = cc
	}
	s := authrefresh.NewSession(store, refresher, authrefresh.Options{})
	return s, closeStore, nil
}

// store is where the profile's token lives: its file, the OS keychain or
// its Redis session, sealed with its seal keys if it has them.
func (p *profile) store() (authrefresh.Store, func(), error) {
	keys, err := p.openKeyring()
	if err != nil {
		return nil, nil, err
	}
	if p.Redis != "" {
		rs, closeRedis, err := p.redisStore()
		if err != nil {
			return nil, nil, err
		}
		rs.Keyring = keys
		return rs, closeRedis, nil
	}
	if p.Keychain {
		return newKeychainStore(p.TokenFile, keys), func() {}, nil
	}
	return &filestore.Store{Path: p.TokenFile, Keyring: keys}, func() {}, nil
}

// pointAt makes the profile's auth server base, with the reference server's
// endpoint paths under it.
func (p *profile) pointAt(server string) error {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return notHTTPURL("--url", server)
	}
	base := strings.TrimRight(server, "/")
	if p.API == "" || strings.HasPrefix(p.API, p.URL+"/") {
		p.API = base + "/api/v1/"
	}
	p.URL, p.Refresh, p.Logout = base, base+"/auth/refresh", base+"/auth/logout"
	return nil
}

// shareInRedis saves the profile (URLs only: no token, no secret) next to the
// Redis session, so that a sidecar on a fresh host can join it.
func (p *profile) shareInRedis(ctx context.Context) error {
	if p.Redis == "" {
		return nil
	}
	store, closeStore, err := p.redisStore()
	if err != nil {
		return err
	}
	defer closeStore()
	shared := *p
	shared.TokenFile, shared.Username, shared.Keyring = "", "", "" // the keyring's place is this host's
	data, _ := json.Marshal(shared)
	return store.SaveInfo(ctx, data)
}

// sharedProfile is the profile saved in Redis at login, or one built from
// authURL when there is none.
func sharedProfile(ctx context.Context, redisURL, session, authURL string) (*profile, error) {
	p := &profile{Redis: redisURL, RedisSession: session}
	store, closeStore, err := p.redisStore()
	if err != nil {
		return nil, err
	}
	defer closeStore()
	data, err := store.LoadInfo(ctx)
	if err != nil {
		return nil, err
	}
	if data != nil {
		if err := json.Unmarshal(data, p); err != nil || p.URL == "" {
			return nil, fmt.Errorf("the profile saved in Redis for session %q is corrupted; log in again with --redis", session)
		}
		p.Redis, p.RedisSession = redisURL, session
		return p, nil
	}
	if authURL == "" {
		return nil, &profileError{name: "default", url: "URL", err: fmt.Errorf("%w: no local profile, and nothing saved in Redis for session %q: log in with --redis %s --session %s, or give --url", authrefresh.ErrNotLoggedIn, session, redisURL, session)}
	}
	return p, p.pointAt(authURL)
}

// redisStore opens the profile's Redis session store.
func (p *profile) redisStore() (*redisstore.Store, func(), error) {
	opts, err := redis.ParseURL(p.Redis)
	if err != nil {
		return nil, nil, usageError{fmt.Sprintf("redis URL: %v", err)}
	}
	redis.SetLogger(quietRedis{}) // its pool logs every failed dial; our errors say it once
	rdb := redis.NewClient(opts)
	return redisstore.New(rdb, p.RedisSession), func() { rdb.Close() }, nil
}

// useRedis points the profile's token at a Redis session, if asked to.
func (p *profile) useRedis(url, session string) error {
	if url == "" {
		if session != "" {
			return usageError{"--session needs --redis"}
		}
		return nil
	}
	if session == "" {
		return usageError{"--redis needs --session NAME (the shared session's name)"}
	}
	if _, err := redis.ParseURL(url); err != nil {
		return usageError{fmt.Sprintf("--redis: %v", err)}
	}
	p.Redis, p.RedisSession = url, session
	return nil
}

// openProfile loads a profile and opens its Session; call the returned
// function when done with it.
func openProfile(name string) (*profile, *authrefresh.Session, func(), error) {
	p, err := loadProfile(name)
	if err != nil {
		return nil, nil, nil, err
	}
	s, closeStore, err := p.session()
	if err != nil {
		return nil, nil, nil, err
	}
	return p, s, closeStore, nil
}

// quietRedis drops go-redis's internal log lines (a dead Redis is reported
// once, through the error of the call that needed it).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// profileFlag declares --profile on fs, for every command that uses a
// profile: its default is $AUTHREFRESH_PROFILE, else "default".
func profileFlag(set *flag.FlagSet) *string {
	return set.String("profile", cmp.Or(os.Getenv("AUTHREFRESH_PROFILE"), "default"), "profile name ($AUTHREFRESH_PROFILE sets the default)")
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
