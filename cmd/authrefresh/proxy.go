package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/sidecar"
)

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("proxy", `A sidecar: requests to --listen are forwarded to --upstream with the profile's token,
refreshed ahead and replayed after a refusal, so any program (curl, a legacy app)
calls the API authenticated. Incoming Authorization headers are replaced.

It answers only its owner: it listens on loopback (or a 0600 unix socket), refuses a
Host that is not its own address (DNS rebinding) and requests a browser sends for a
web page (Origin, Sec-Fetch-Site), unless allowed. --allow-remote needs an authority:
--client-secret-file (every request must carry Proxy-Authorization: Bearer SECRET),
or mutual TLS (--tls-cert-file, --tls-key-file, --client-ca-file: every client must
present a certificate that CA signed), or both.
Memory and time are bounded: --replay-budget (and a soft memory limit of the budget
plus 64 MiB unless GOMEMLIMIT is set), --max-concurrent, body timeouts.

Every flag can also come from the environment, as a container sets it: --upstream
from AUTHREFRESH_PROXY_UPSTREAM, --allow-remote from AUTHREFRESH_PROXY_ALLOW_REMOTE
(a repeatable flag takes a comma-separated list, and the command line adds to it);
a flag on the command line wins.

For operators, the proxy answers itself under /.authrefresh/ (never forwarded, and
only to its owner like everything else): /.authrefresh/health is 200 while a usable
token can be had, else 503 and why; /.authrefresh/metrics is Prometheus text.`, `  authrefresh proxy --upstream http://127.0.0.1:8080
  curl http://127.0.0.1:9000/api/v1/me
  authrefresh proxy --listen unix:/run/user/1000/api.sock --upstream https://api.example.com --profile prod
  curl --unix-socket /run/user/1000/api.sock http://api/v1/me
  authrefresh proxy --listen 0.0.0.0:9000 --allow-remote --client-secret-file proxy.secret --allow-host sidecar.internal:9000
  authrefresh proxy --listen 0.0.0.0:9443 --allow-remote --tls-cert-file proxy.crt --tls-key-file proxy.key --client-ca-file clients-ca.crt
  authrefresh login --url http://127.0.0.1:8080 --username demo --redis redis://127.0.0.1:6379/0 --session orders
  authrefresh proxy --redis redis://127.0.0.1:6379/0 --session orders   # on every host, no local profile needed
`, stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on: host:port, or unix:PATH for a socket only you can use (0600)")
	upstream := fs.String("upstream", "", "upstream base URL (default: the profile's server)")
	name := profileFlag(fs)
	authURL := fs.String("url", "", "auth server base URL (default: the profile's; with --redis and no local profile, the one saved in Redis at login)")
	allowRemote := fs.Bool("allow-remote", false, "allow listening on a non-loopback address (needs --client-secret-file or --client-ca-file)")
	secretFile := fs.String("client-secret-file", "", "a 0600 file whose contents every request must send as Proxy-Authorization: Bearer SECRET")
	tlsCert := fs.String("tls-cert-file", "", "serve HTTPS with this certificate (PEM, chain first)")
	tlsKey := fs.String("tls-key-file", "", "the certificate's private key (a 0600 PEM file)")
	clientCA := fs.String("client-ca-file", "", "with TLS: every client must present a certificate signed by a CA in this PEM file (mutual TLS)")
	var allowHosts, allowOrigins listFlag
	fs.Var(&allowHosts, "allow-host", "a Host:port clients may use besides the listen address (repeatable)")
	fs.Var(&allowOrigins, "allow-origin", "a web page origin (https://app.example) allowed to call the proxy from a browser (repeatable)")
	maxReplay := fs.Int64("max-replay-buffer", authrefresh.DefaultMaxReplayBuffer, "bytes of one streamed request body kept for a replay")
	replayBudget := fs.Int64("replay-budget", 64<<20, "bytes all replay copies may hold at once; beyond it bodies stream without a copy")
	maxConcurrent := fs.Int("max-concurrent", 256, "requests in flight at once (and upstream connections); more wait for a slot, up to --queue-timeout")
	queueTimeout := fs.Duration("queue-timeout", 30*time.Second, "how long a request waits for a slot before 503 with Retry-After")
	bodyIdle := fs.Duration("body-idle-timeout", 15*time.Second, "longest pause while a request body is coming")
	bodyTotal := fs.Duration("body-timeout", 2*time.Minute, "longest time a request body may take in all")
	redisURL := fs.String("redis", "", "share the session through Redis (redis://host:6379/0): any number of sidecars refresh once")
	redisSession := fs.String("session", "", "with --redis: the shared session's name (log in once with login --redis URL --session NAME)")
	keyring := fs.String("seal-key", "", "the keys that seal the token (a 0600 file, or env for $"+keyringEnv+"); default: the profile's")
	providerSecret := fs.String("provider-secret-file", "", "the profile's OAuth2 client secret file on this host, where it is not at the path saved at login\n(a sidecar joining a Redis session on a fresh host)")
	providerKey := fs.String("provider-key-file", "", "the same for a private_key_jwt key file")
	retry := fs.String("retry-status", "", "statuses with which the upstream refuses an expired token, comma-separated (default: the profile's, else 401)")
	quiet := fs.Bool("quiet", false, "no log line per request; failed and refused ones are still logged")
	if err := flagsFromEnv(fs, "AUTHREFRESH_PROXY_"); err != nil {
		return err
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	socket, isSocket := strings.CutPrefix(*listen, "unix:")
	if !isSocket {
		if err := checkLoopback(*listen, *allowRemote); err != nil {
			return err
		}
	}
	var secret []byte
	if *secretFile != "" {
		var err error
		if secret, err = readSecretFile(*secretFile); err != nil {
			return err
		}
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" || *tlsKey != "" || *clientCA != "" {
		var err error
		if tlsConfig, err = proxyTLS(*tlsCert, *tlsKey, *clientCA); err != nil {
			return err
		}
	}
	mutualTLS := tlsConfig != nil && tlsConfig.ClientAuth == tls.RequireAndVerifyClientCert
	if *allowRemote && secret == nil && !mutualTLS {
		return usageError{"--allow-remote needs --client-secret-file or mutual TLS (--tls-cert-file, --tls-key-file, --client-ca-file): a proxy that holds a token must not answer anyone who can reach it"}
	}
	if *maxConcurrent < 1 || *replayBudget < 0 || *bodyIdle <= 0 || *bodyTotal <= 0 || *queueTimeout < 0 {
		return usageError{"--max-concurrent must be at least 1, --replay-budget at least 0, and the timeouts positive"}
	}
	statuses, err := parseStatuses(*retry)
	if err != nil {
		return err
	}
	p, err := proxyProfile(ctx, *name, *redisURL, *redisSession, *authURL)
	if err != nil {
		return err
	}
	if statuses != nil {
		p.RetryStatuses = statuses
	}
	if err := p.localCredentials(*providerSecret, *providerKey); err != nil {
		return err
	}
	if err := p.useKeyring(*keyring); err != nil {
		return err
	}
	if *upstream == "" {
		*upstream = p.URL
		if p.Client != nil { // a provider's profile: its API, not its issuer
			*upstream = p.API
		}
	}
	target, err := url.Parse(*upstream)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return notHTTPURL("--upstream", *upstream)
	}
	session, closeStore, err := p.session()
	if err != nil {
		return err
	}
	defer closeStore()
	if _, err := session.Token(ctx); err != nil {
		return inProfile(*name, p, err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the garbage collector works harder near it, so a
		// burst of uploads costs about the budget plus a working set, not
		// twice the budget (GOGC's default headroom). GOMEMLIMIT overrides.
		debug.SetMemoryLimit(*replayBudget + 64<<20)
	}
	var ln net.Listener
	if isSocket {
		ln, err = listenUnix(socket)
	} else {
		ln, err = net.Listen("tcp", *listen)
	}
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	cfg := sidecar.Config{
		Session: session, Upstream: target,
		Logger:          slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		LoginHint:       "log in again: " + p.loginCommand(*name),
		MaxReplayBuffer: *maxReplay, ReplayBudget: authrefresh.NewReplayBudget(*replayBudget), RetryStatuses: p.retryStatuses(),
		Guard:  sidecar.Guard{Origins: allowOrigins, Secret: secret},
		Limits: sidecar.Limits{Concurrent: *maxConcurrent, QueueWait: *queueTimeout, BodyIdle: *bodyIdle, BodyTotal: *bodyTotal},
	}
	switch {
	case isSocket: // the socket's permissions are the authority; clients send any Host
	case *allowRemote && len(allowHosts) == 0: // the client secret or certificate is the authority
	default:
		cfg.Guard.Hosts = append(sidecar.LoopbackHosts(ln.Addr()), lower(allowHosts)...)
	}
	where := "http://" + ln.Addr().String()
	if tlsConfig != nil {
		where = "https://" + ln.Addr().String()
	}
	if isSocket {
		where = "unix:" + socket
	}
	fmt.Fprintf(stdout, "authrefresh proxy on %s → %s (profile %q)\n", where, target, *name)
	return serveUntilDone(ctx, ln, sidecar.New(cfg))
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// readSecretFile reads the proxy's client secret, refusing a file others can
// read (the secret would be theirs too) and a short one.
func readSecretFile(path string) ([]byte, error) {
	return readSecret("--client-secret-file", path, 16, "use a long random secret (openssl rand -hex 32)")
}

// readSecret reads a secret from the 0600 file at path, named by flag in
// errors (which never quote it), at least min characters.
func readSecret(flag, path string, min int, hint string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, usageError{fmt.Sprintf("%s: %v", flag, err)}
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, usageError{fmt.Sprintf("%s %s can be read by others (mode %v); chmod 600 it", flag, path, info.Mode().Perm())}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Sprintf("%s: %v", flag, err)}
	}
	secret := []byte(strings.TrimSpace(string(data)))
	if len(secret) < min {
		return nil, usageError{fmt.Sprintf("%s holds fewer than %d characters; %s", flag, min, hint)}
	}
	return secret, nil
}

// proxyProfile is the profile a sidecar runs with: the local one, pointed at
// Redis if asked; or, on a fresh host with --redis and no local profile, the
// one saved in Redis at login (or built from --url).
func proxyProfile(ctx context.Context, name, redisURL, redisSession, authURL string) (*profile, error) {
	p, err := loadProfile(name)
	if err != nil {
		if redisURL == "" || !errors.Is(err, authrefresh.ErrNotLoggedIn) {
			return nil, err
		}
		if redisSession == "" {
			return nil, usageError{"--redis needs --session NAME (the shared session's name)"}
		}
		if p, err = sharedProfile(ctx, redisURL, redisSession, authURL); err != nil {
			return nil, err
		}
	}
	if err := p.useRedis(redisURL, redisSession); err != nil {
		return nil, err
	}
	if authURL != "" {
		if err := p.pointAt(authURL); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkLoopback refuses a non-loopback listen address unless allowed.
func checkLoopback(addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Sprintf("--listen %q: %v", addr, err)}
	}
	if loopback(host) {
		return nil
	}
	return usageError{fmt.Sprintf("--listen %s is not a loopback address; anyone who can reach it could use your token. If you mean it, pass --allow-remote with an authority callers must show: --client-secret-file FILE, or mutual TLS (--tls-cert-file, --tls-key-file, --client-ca-file)", addr)}
}
