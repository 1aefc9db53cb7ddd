package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// command is one authrefresh command. The table below is the one place a
// command is named: the usage text, "help COMMAND", the dispatch and the
// package documentation (TestPackageDocMatchesCommands) come from it, as
// cmd/go's base.Command does.
type command struct {
	name  string
	args  string // what follows the name on its usage line
	short string // its line in the command list
	run   func(ctx context.Context, args []string, o stdio) error
}

// stdio is a command's standard streams.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// commands is the table, in the order help lists them. It is filled in
// init: help's own entry reads it.
var commands []*command

func init() {
	commands = []*command{
		{"serve", "[flags]", "run the reference auth server (127.0.0.1:8080)",
			func(ctx context.Context, a []string, o stdio) error { return runServe(ctx, a, o.out, o.err) }},
		{"demo", "[flags]", "many workers through one refreshing Session, with a report",
			func(ctx context.Context, a []string, o stdio) error { return runDemo(ctx, a, o.out, o.err) }},
		{"login", "[flags]", "log in at a provider (--issuer) or a JSON API (--url); keep the session",
			func(ctx context.Context, a []string, o stdio) error { return runLogin(ctx, a, o.in, o.out, o.err) }},
		{"request", "[METHOD] PATH [flags]", "call the API with the profile's token",
			func(ctx context.Context, a []string, o stdio) error { return runRequest(ctx, a, o.in, o.out, o.err) }},
		{"token", "[--profile P]", "print a valid access token",
			func(ctx context.Context, a []string, o stdio) error { return runToken(ctx, a, o.out, o.err) }},
		{"logout", "[--profile P]", "revoke the refresh token and forget the session",
			func(ctx context.Context, a []string, o stdio) error { return runLogout(ctx, a, o.err) }},
		{"status", "[--profile P] [--output json]", "show the profiles and their sessions (no token printed)", runStatus},
		{"proxy", "--upstream URL [flags]", "sidecar: forward 127.0.0.1:9000 to URL with the token",
			func(ctx context.Context, a []string, o stdio) error { return runProxy(ctx, a, o.out, o.err) }},
		{"bff", "--issuer URL [flags]", "serve a browser app and its APIs; its users' tokens stay on the server",
			func(ctx context.Context, a []string, o stdio) error { return runBFF(ctx, a, o.out, o.err) }},
		{"kubeconfig", "[--profile P] [--name USER]", "print the kubeconfig user whose exec plugin is this profile's token", runKubeconfig},
		{"git-credential", "[--profile P] get|store|erase", "git's credential helper: the profile's token as the password for its API host", runGitCredential},
		{"docker-credential", "get|store|erase|list", "docker's credential helper (run as docker-credential-authrefresh)", runDockerCredential},
		{"seal-key", "FILE", "create or rotate the keys that seal tokens at rest",
			func(ctx context.Context, a []string, o stdio) error { return runSealKey(ctx, a, o.out, o.err) }},
		{"completion", "bash|zsh|fish", "print a shell completion script", runCompletion},
		{"version", "", "print the version", runVersion},
		{"help", "[COMMAND]", "print this help, or a command's", runHelp},
	}
}

// lookup is the command named name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// commandLines are the command list's lines, "NAME ARGS" padded to one
// column, then the short description.
func commandLines() []string {
	width := 0
	for _, c := range commands {
		width = max(width, len(c.synopsis()))
	}
	lines := make([]string, len(commands))
	for i, c := range commands {
		lines[i] = fmt.Sprintf("authrefresh %-*s  %s", width, c.synopsis(), c.short)
	}
	return lines
}

func (c *command) synopsis() string { return strings.TrimSpace(c.name + " " + c.args) }

// usageText is the top-level help.
func usageText() string {
	var b strings.Builder
	b.WriteString("authrefresh — call OAuth2/JWT-protected HTTP APIs without thinking about token expiry.\n\nUsage:\n")
	for _, l := range commandLines() {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString(`
Run 'authrefresh help COMMAND' (or 'authrefresh COMMAND --help') for a command's flags and examples.

Exit codes: 0 success, 1 failure, 2 usage error, 3 the API answered an error status,
4 not logged in, wrong credentials or session expired (run login), 5 a server could
not be reached or is failing for now, 6 a local setting to fix (a URL, a token file).
Profiles live in $AUTHREFRESH_CONFIG_DIR, else the user config directory (authrefresh/).
`)
	return b.String()
}

// runVersion prints the version; it takes no arguments.
func runVersion(_ context.Context, args []string, o stdio) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("version: unexpected argument %q: it takes none", args[0])}
	}
	fmt.Fprintln(o.out, versionString())
	return nil
}

// runHelp prints the command list, or a command's help.
func runHelp(ctx context.Context, args []string, o stdio) error {
	switch {
	case len(args) == 0:
		fmt.Fprint(o.out, usageText())
		return nil
	case len(args) > 1:
		return usageError{"help: one command at a time, e.g. 'authrefresh help request'"}
	}
	c := lookup(args[0])
	switch {
	case c == nil:
		return unknownCommand(args[0])
	case c.name == "help" || c.name == "version":
		fmt.Fprintf(o.out, "Usage: authrefresh %s\n\n%s\n", c.synopsis(), c.short)
		return nil
	}
	return c.run(ctx, []string{"--help"}, o)
}

// unknownCommand is the usage error for name, with the nearest command
// when one is near.
func unknownCommand(name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if near := nearest(name); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return usageError{msg + "\nRun 'authrefresh help' for the commands."}
}

// nearest is the command within two edits of name, if any.
func nearest(name string) string {
	best, bestDist := "", 3
	for _, c := range commands {
		if d := editDistance(strings.ToLower(name), c.name); d < bestDist {
			best, bestDist = c.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (adjacent
// transpositions count one).
func editDistance(a, b string) int {
	if len(a) > 64 {
		return len(a) // not a mistyped command
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
