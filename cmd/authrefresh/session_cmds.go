package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/filestore"
	"github.com/authrefresh/authrefresh/internal/safetext"
	"github.com/authrefresh/authrefresh/jsonauth"
	"golang.org/x/term"
)

// runLogin: authrefresh login --url URL [--username U] [--password-stdin] [--profile P]
func runLogin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("login", "Log in to an auth server and keep the session in a profile (a 0600 file under the\nuser config directory). The password is prompted without echo, or read from stdin;\nit is never taken as an argument.", `  authrefresh login --url http://127.0.0.1:8080 --username demo
  echo "$PASSWORD" | authrefresh login --url https://auth.example.com --username me --password-stdin --profile prod
  authrefresh login --client-id orders-service --issuer https://auth.example.com --client-secret-file ~/.orders-secret --scope "orders:read" --api https://api.example.com/ --profile orders
`, stderr)
	server := fs.String("url", "", "auth server base URL (required); /auth/login, /auth/refresh, /auth/logout are under it")
	api := fs.String("api", "", "API base URL that request paths are relative to (default: URL/api/v1/)")
	user := fs.String("username", "", "user name (prompted if empty)")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	name := profileFlag(fs)
	redisURL := fs.String("redis", "", "keep the token in Redis (redis://host:6379/0) instead of a file, shared by every process using it")
	redisSession := fs.String("session", "", "with --redis: the shared session's name")
	keyring := fs.String("seal-key", "", "seal the token at rest with these keys: a 0600 file (make one with: authrefresh seal-key FILE),\nor env for the keys in $"+keyringEnv)
	keychain := fs.Bool("keychain", false, "keep the token in the OS keychain (macOS Keychain, Windows Credential Manager, the Secret\nService on Linux) instead of a 0600 file; where none answers, the file is used and this is said")
	var client clientFlags
	fs.StringVar(&client.id, "client-id", "", "log in at an OAuth2/OpenID provider with this client (see --flow) instead of --url")
	fs.StringVar(&client.issuer, "issuer", "", "with --client-id: the provider's issuer URL; its endpoints and methods are discovered")
	fs.StringVar(&client.tokenURL, "token-url", "", "with --client-id: the token endpoint, instead of --issuer (client-credentials and password flows)")
	fs.StringVar(&client.flow, "flow", "", "with --client-id: browser, device, client-credentials or password (default: client-credentials\nwith a secret or key; else browser where one can open, else device)")
	fs.StringVar(&client.secretFile, "client-secret-file", "", "with --client-id: a 0600 file holding the client secret (never an argument)")
	fs.StringVar(&client.keyFile, "client-key-file", "", "with --client-id: a 0600 private key (PEM or JWK), for private_key_jwt instead of a secret")
	fs.StringVar(&client.scope, "scope", "", "with --client-id: the scopes to request, space- or comma-separated")
	fs.StringVar(&client.audience, "audience", "", "with --client-id: the audience parameter some providers need (Auth0)")
	fs.StringVar(&client.auth, "client-auth", "", "with --client-id: basic, post or private_key_jwt (default: from the key, or what the provider supports)")
	fs.StringVar(&client.redirect, "redirect-url", "", "with --flow browser: the registered loopback redirect URI (default: http://127.0.0.1:PORT/callback, any free port)")
	fs.BoolVar(&client.noBrowser, "no-browser", false, "with --flow browser: print the URL only, do not open a browser")
	fs.BoolVar(&client.dpop, "dpop", false, "with --client-id: bind the tokens to a key made for this login (DPoP, RFC 9449): a copied\ntoken is useless without it; the key is kept with the token (sealed with --seal-key)")
	loginPath := fs.String("login-path", "/auth/login", "with --url: the login endpoint's path (JSON {username, password})")
	refreshPath := fs.String("refresh-path", "/auth/refresh", "with --url: the refresh endpoint's path")
	logoutPath := fs.String("logout-path", "/auth/logout", "with --url: the logout endpoint's path")
	retry := fs.String("retry-status", "", "statuses with which the API refuses an expired token, comma-separated (default 401; e.g. 401,403)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	statuses, err := parseStatuses(*retry)
	if err != nil {
		return err
	}
	in := bufio.NewReader(stdin)
	if client.id != "" {
		client.username, client.pwStdin = *user, *pwStdin
		p, err := clientProfile(ctx, *name, client, *api)
		if err != nil {
			return err
		}
		p.RetryStatuses = statuses
		if err := p.useRedis(*redisURL, *redisSession); err != nil {
			return err
		}
		if err := p.useKeyring(*keyring); err != nil {
			return err
		}
		if err := p.useKeychain(*keychain, stderr); err != nil {
			return err
		}
		return loginClient(ctx, *name, p, client, in, stdin, stderr)
	}
	if *server == "" {
		return usageError{"login: --url is required (or --client-id for a machine-to-machine profile)"}
	}
	p, err := newProfile(*name, *server, *api)
	if err != nil {
		return err
	}
	for _, path := range []string{*loginPath, *refreshPath, *logoutPath} {
		if !strings.HasPrefix(path, "/") {
			return usageError{fmt.Sprintf("login: %q is not a path: the endpoint paths start with /", path)}
		}
	}
	p.Refresh, p.Logout = p.URL+*refreshPath, p.URL+*logoutPath
	if err := p.useRedis(*redisURL, *redisSession); err != nil {
		return err
	}
	if err := p.useKeyring(*keyring); err != nil {
		return err
	}
	if err := p.useKeychain(*keychain, stderr); err != nil {
		return err
	}
	p.RetryStatuses = statuses
	username, password, err := promptCredentials(in, stdin, stderr, *user, *pwStdin)
	if err != nil {
		return err
	}
	*user = username
	tok, err := jsonauth.Login(ctx, nil, p.URL+*loginPath, *user, password)
	if err != nil {
		return &loginError{url: p.URL + *loginPath, err: err}
	}
	p.Username = *user
	if err := keepLogin(ctx, *name, p, tok); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "logged in to %s as %s (profile %q)\n", p.URL, *user, *name)
	return nil
}

// keepLogin saves profile p as name and starts its session with tok (the
// store, and the profile next to a Redis session).
func keepLogin(ctx context.Context, name string, p *profile, tok *authrefresh.Token) error {
	if err := saveProfile(name, p); err != nil {
		return err
	}
	session, closeStore, err := p.session()
	if err != nil {
		return err
	}
	defer closeStore()
	if err := session.Login(ctx, tok); err != nil {
		return err
	}
	if p.Keychain {
		// A token file from an earlier login is not left behind.
		_ = (&filestore.Store{Path: p.TokenFile}).Clear(ctx)
	}
	return p.shareInRedis(ctx)
}

// promptCredentials asks for the user name (unless given) and the
// password (without echo, or from stdin).
func promptCredentials(in *bufio.Reader, stdin io.Reader, stderr io.Writer, user string, fromStdin bool) (string, string, error) {
	if user == "" {
		fmt.Fprint(stderr, "username: ")
		line, _ := in.ReadString('\n')
		user = strings.TrimSpace(line)
	}
	password, err := readPassword(in, stdin, stderr, fromStdin)
	return user, password, err
}

// parseStatuses reads --retry-status: "401,403".
func parseStatuses(v string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 400 || n > 599 {
			return nil, usageError{fmt.Sprintf("--retry-status %q: want statuses from 400 to 599, as in 401,403", v)}
		}
		out = append(out, n)
	}
	return out, nil
}

func readPassword(in *bufio.Reader, stdin io.Reader, stderr io.Writer, fromStdin bool) (string, error) {
	if !fromStdin {
		f, ok := stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", usageError{"login: no terminal to prompt for the password; use --password-stdin"}
		}
		fmt.Fprint(stderr, "password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return string(pw), err
	}
	line, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", usageError{"login: empty password on stdin"}
	}
	return line, nil
}

// runLogout revokes the refresh token on the server and forgets the session.
func runLogout(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("logout", "Revoke the profile's refresh token on the server and delete the local token.", "  authrefresh logout\n  authrefresh logout --profile prod\n", stderr)
	name := profileFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p, session, closeStore, err := openProfile(*name)
	if err != nil {
		return inProfile(*name, p, err)
	}
	defer closeStore()
	if err := session.Logout(ctx); err != nil {
		fmt.Fprintf(stderr, "warning: %v (the local token is deleted anyway)\n", err)
	}
	fmt.Fprintf(stderr, "logged out of %s\n", p.URL)
	return nil
}

// runToken prints a valid access token, refreshing it if needed.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token", `Print a valid access token (refreshed if needed) for use with other tools. A token
still valid is read from the profile's store with no network call.

--output exec-credential prints a client.authentication.k8s.io ExecCredential for
kubectl and client-go (the apiVersion they ask for in $KUBERNETES_EXEC_INFO, v1 by
default, with the token's expirationTimestamp): put 'authrefresh token --output
exec-credential' in a kubeconfig's users[].user.exec.`, `  curl -H "Authorization: Bearer $(authrefresh token)" http://127.0.0.1:8080/api/v1/me
  curl -H "$(authrefresh token --output header)" http://127.0.0.1:8080/api/v1/me
  authrefresh token --output json
  authrefresh token --output exec-credential --profile cluster   # kubectl's exec credential plugin
`, stderr)
	name := profileFlag(fs)
	output := fs.String("output", "token", "token, header (Authorization: Bearer …), json ({access_token, token_type, expiry}) or exec-credential (kubectl)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *output {
	case "token", "header", "json", "exec-credential":
	default:
		return flagError(fs, fmt.Sprintf("--output %q: want token, header, json or exec-credential", *output))
	}
	p, session, closeStore, err := openProfile(*name)
	if err != nil {
		return inProfile(*name, p, err)
	}
	defer closeStore()
	tok, err := session.Token(ctx)
	if err != nil {
		return inProfile(*name, p, err)
	}
	if err := bearerOnly(*name, tok); err != nil {
		return err
	}
	switch *output {
	case "header":
		fmt.Fprintln(stdout, "Authorization: Bearer "+tok.AccessToken)
	case "json":
		out := map[string]any{"access_token": tok.AccessToken, "token_type": "Bearer"}
		if !tok.Expiry.IsZero() {
			out["expiry"] = tok.Expiry.UTC().Format(time.RFC3339)
		}
		json.NewEncoder(stdout).Encode(out)
	case "exec-credential":
		if err := writeExecCredential(stdout, tok, os.Getenv("KUBERNETES_EXEC_INFO")); err != nil {
			return err
		}
	default:
		fmt.Fprintln(stdout, tok.AccessToken)
	}
	return unsaved(*name, p, session)
}

// bearerOnly refuses to hand out a token bound to a key with DPoP: a
// copy is useless without a proof per request, which only request and
// proxy sign.
func bearerOnly(name string, tok *authrefresh.Token) error {
	if !strings.EqualFold(tok.TokenType, "DPoP") {
		return nil
	}
	return usageError{fmt.Sprintf("profile %q holds a DPoP-bound token: it works only with a proof per request, signed by its key; use 'authrefresh request' or 'authrefresh proxy' instead of handing the token out", name)}
}

// writeExecCredential writes tok as the ExecCredential client-go's exec
// authenticator reads, in the apiVersion it asked for in execInfo
// ($KUBERNETES_EXEC_INFO), client.authentication.k8s.io/v1 by default.
func writeExecCredential(w io.Writer, tok *authrefresh.Token, execInfo string) error {
	apiVersion := "client.authentication.k8s.io/v1"
	if execInfo != "" {
		var info struct {
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal([]byte(execInfo), &info); err != nil {
			return usageError{"KUBERNETES_EXEC_INFO is not the JSON client-go sets: " + safetext.Message(err)}
		}
		switch info.APIVersion {
		case "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1":
			apiVersion = info.APIVersion
		case "":
		default:
			return usageError{fmt.Sprintf("KUBERNETES_EXEC_INFO asks for %q; this plugin speaks client.authentication.k8s.io/v1 and v1beta1", info.APIVersion)}
		}
	}
	status := map[string]any{"token": tok.AccessToken}
	if !tok.Expiry.IsZero() {
		// client-go runs the plugin again once this has passed.
		status["expirationTimestamp"] = tok.Expiry.UTC().Format(time.RFC3339)
	}
	return json.NewEncoder(w).Encode(map[string]any{
		"kind": "ExecCredential", "apiVersion": apiVersion, "spec": map[string]any{"interactive": false}, "status": status,
	})
}

// headerFlags collects -H 'Name: value'.
type headerFlags http.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New("want 'Name: value'")
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

// runRequest: authrefresh request [METHOD] PATH [--data JSON|@file|@-] [-H 'K: V']...
func runRequest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("request", "Send an authenticated request to the profile's API and print the answer. A PATH\nstarting with / is taken from the API's host, as curl and the proxy take it\n(/api/v1/me); any other PATH is relative to the profile's API base URL (me, data).\nThe token is refreshed and the request replayed as needed. METHOD defaults to GET,\nor POST with --data.", `  authrefresh request me
  authrefresh request -i me        # with the status line and headers
  authrefresh request me --output me.json   # the body to a 0600 file, as it came
  authrefresh request /api/v1/me
  authrefresh request POST data --data '{"name":"Widget","price":9.99}'
  authrefresh request POST data --data @product.json -H 'X-Request-Id: 42'
  cat product.json | authrefresh request POST data --data @-
`, stderr)
	data := fs.String("data", "", "request body: JSON, @file, or @- for stdin")
	include := fs.Bool("i", false, "print the answer's status line and headers before its body, as curl -i")
	verbose := fs.Bool("v", false, "print the request's and the answer's headers on stderr, as curl -v (never the token)")
	outFile := fs.String("output", "", "write a 2xx answer's body to this file (created 0600), as it came, instead of stdout; an error answer still goes to stdout")
	name := profileFlag(fs)
	headers := headerFlags{}
	fs.Var(headers, "H", "extra header 'Name: value' (repeatable)")
	var positional []string
	for rest := args; ; {
		if err := parse(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	method, path := http.MethodGet, ""
	switch len(positional) {
	case 1:
		path = positional[0]
		if isMethod(path) {
			return flagError(fs, fmt.Sprintf("%s needs a PATH, as in: authrefresh request %s me", path, path))
		}
		if *data != "" {
			method = http.MethodPost
		}
	case 2:
		method, path = strings.ToUpper(positional[0]), positional[1]
		if !isMethod(method) {
			return flagError(fs, fmt.Sprintf("%q is not an HTTP method; want [METHOD] PATH", positional[0]))
		}
	default:
		return flagError(fs, "want [METHOD] PATH")
	}
	body, err := readData(*data, stdin)
	if err != nil {
		return err
	}
	p, session, closeStore, err := openProfile(*name)
	if err != nil {
		return inProfile(*name, p, err)
	}
	defer closeStore()
	client, err := authrefresh.NewClient(p.API, session)
	if err != nil {
		return err
	}
	client.Transport.RetryStatuses = p.retryStatuses()
	var reader io.Reader
	if body != nil {
		reader = strings.NewReader(string(body))
	}
	req, err := client.NewRequest(ctx, method, fromHost(client.BaseURL, path), reader)
	if err != nil {
		return err
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	tty := isTerminal(stderr)
	if *verbose {
		fmt.Fprintf(stderr, "> %s %s %s\n", req.Method, req.URL.RequestURI(), "HTTP/1.1")
		fmt.Fprintf(stderr, "> Host: %s\n", req.URL.Host)
		if origin(req.URL) == origin(client.BaseURL) {
			fmt.Fprintln(stderr, "> Authorization: [the profile's token, not shown]")
		}
		writeHeaders(stderr, "> ", req.Header)
		fmt.Fprintln(stderr, ">")
	}
	stopSpinner := spinner(stderr, tty && !*verbose, fmt.Sprintf("%s %s", method, path))
	resp, err := client.Do(req)
	stopSpinner()
	if err != nil {
		return inProfile(*name, p, fmt.Errorf("could not %s %s: %w", strings.ToLower(method), path, err))
	}
	defer resp.Body.Close()
	if *verbose {
		fmt.Fprintf(stderr, "< %s %s\n", resp.Proto, safetext.Lines(resp.Status))
		writeHeaders(stderr, "< ", resp.Header)
		fmt.Fprintln(stderr, "<")
	}
	if *include {
		fmt.Fprintf(stdout, "%s %s\n", resp.Proto, safetext.Lines(resp.Status))
		writeHeaders(stdout, "", resp.Header)
		fmt.Fprintln(stdout)
	}
	if *outFile != "" && resp.StatusCode/100 == 2 {
		if err := saveBody(*outFile, resp.Body); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return &outputError{err}
			}
			return fmt.Errorf("could not %s %s: %w", strings.ToLower(method), path, err)
		}
		if tty {
			fmt.Fprintf(stderr, "✓ %s %s: %s → %s\n", method, path, resp.Status, *outFile)
		}
		return unsaved(*name, p, session)
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, authrefresh.DefaultMaxResponseBytes))
	if err != nil {
		return fmt.Errorf("could not %s %s: reading the answer: %w", strings.ToLower(method), path, err)
	}
	if resp.StatusCode/100 != 2 {
		writeBody(stdout, answer, isTerminal(stdout)) // the answer is data, as curl prints it; the explanation goes to stderr
		f := &httpFailure{method: method, path: path, status: resp.StatusCode, body: answer, header: resp.Header}
		if to, api := origin(req.URL), origin(client.BaseURL); to != api {
			f.withheld, f.sent = to, api
		}
		return f
	}
	writeBody(stdout, answer, isTerminal(stdout))
	if tty {
		fmt.Fprintf(stderr, "✓ %s %s: %s\n", method, path, resp.Status)
	}
	return unsaved(*name, p, session)
}

// unsaved is the error of a command whose Session renewed the token but
// could not save it: the command's own work is done, but the next process
// will find only the previous token.
func unsaved(name string, p *profile, s *authrefresh.Session) error {
	if err := s.StoreError(); err != nil {
		return inProfile(name, p, &unsavedError{err: err})
	}
	return nil
}

// isMethod reports an HTTP method name, in any case.
func isMethod(s string) bool {
	switch strings.ToUpper(s) {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// fromHost makes a PATH that starts with "/" absolute on base's host, as curl
// and the proxy read it; any other PATH stays relative to base.
func fromHost(base *url.URL, path string) string {
	if strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "//") {
		return base.Scheme + "://" + base.Host + path
	}
	return path
}

// writeHeaders writes h sorted by name, each line after prefix, without
// anything that could steer a terminal. An Authorization or Cookie header
// is never shown.
func writeHeaders(w io.Writer, prefix string, h http.Header) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "Proxy-Authorization") || strings.EqualFold(k, "Cookie") {
				v = "[not shown]"
			}
			fmt.Fprintf(w, "%s%s: %s\n", prefix, safetext.Lines(k), safetext.Lines(v))
		}
	}
}

// origin is u's scheme and host, as the token's origins are compared.
func origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// readData resolves --data: inline JSON, @file or @- (stdin).
func readData(data string, stdin io.Reader) ([]byte, error) {
	switch {
	case data == "":
		return nil, nil
	case data == "@-":
		return io.ReadAll(io.LimitReader(stdin, 64<<20))
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, usageError{fmt.Sprintf("--data: %v", err)}
		}
		return b, nil
	}
	return []byte(data), nil
}

// writeBody prints JSON indented on a terminal, raw otherwise.
func writeBody(w io.Writer, body []byte, tty bool) {
	if tty && json.Valid(body) {
		var out strings.Builder
		enc := json.NewEncoder(&out)
		enc.SetIndent("", "  ")
		var v any
		if json.Unmarshal(body, &v) == nil && enc.Encode(v) == nil {
			fmt.Fprint(w, out.String())
			return
		}
	}
	w.Write(body)
	// A terminal's prompt, and a pipe's next reader (jq, a shell loop),
	// want a final newline after text; a binary body is left as it came.
	if len(body) > 0 && body[len(body)-1] != '\n' && (tty || json.Valid(body)) {
		fmt.Fprintln(w)
	}
}

// httpFailure is a non-2xx answer, printed as one line with the server's
// message and any field errors under it.
type httpFailure struct {
	method, path string
	status       int
	body         []byte
	header       http.Header
	// withheld is the origin the request went to when it is not the
	// profile's API: the token was not sent there (sent names where it
	// goes).
	withheld, sent string
}

func (f *httpFailure) Error() string {
	req, _ := http.NewRequest(f.method, "http://x/"+strings.TrimLeft(f.path, "/"), nil)
	apiErr := authrefresh.NewAPIError(req, &http.Response{StatusCode: f.status, Header: f.header}, f.body)
	msg := apiErr.Message
	if msg == "" {
		msg = http.StatusText(f.status)
	}
	s := fmt.Sprintf("could not %s %s: %s [%d]", strings.ToLower(f.method), f.path, msg, f.status)
	for k, v := range apiErr.Details {
		s += fmt.Sprintf("\n  %s: %v", k, v)
	}
	if f.withheld != "" && (f.status == http.StatusUnauthorized || f.status == http.StatusForbidden) {
		s += fmt.Sprintf("\nthe token was not sent: it goes only to %s, the profile's API, and this request went to %s; use a path on the API's host (or log in with --api for that origin)", f.sent, f.withheld)
	}
	return s
}

// spinner shows progress on a terminal for a request slower than 300 ms.
func spinner(w io.Writer, tty bool, what string) (stop func()) {
	if !tty {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		shown := false
		for i := 0; ; i++ {
			select {
			case <-done:
				if shown {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-t.C:
				if i >= 3 {
					shown = true
					fmt.Fprintf(w, "\r%s %s…", frames[i%len(frames)], what)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// saveBody streams body into the file at path, created 0600 (an API's
// answer may be private), replacing what was there only once all of it
// arrived.
func saveBody(path string, body io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; removes what a failure left
	if _, err := io.Copy(tmp, body); err != nil {
		tmp.Close()
		return fmt.Errorf("reading the answer: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// outputError is a --output file that could not be written: a setting to
// fix, not the server's failure.
type outputError struct{ err error }

func (e *outputError) Error() string { return "cannot write --output: " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }
