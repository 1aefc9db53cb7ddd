// Command authrefresh calls OAuth2/JWT-protected HTTP APIs with a token that
// is refreshed before it expires: log in once, then request, print a token,
// or run a sidecar proxy that authenticates any program's requests. It also
// runs the reference auth server and a load demo.
//
//	authrefresh serve [flags]                                 run the reference auth server (127.0.0.1:8080)
//	authrefresh demo [flags]                                  many workers through one refreshing Session, with a report
//	authrefresh login [flags]                                 log in at a provider (--issuer) or a JSON API (--url); keep the session
//	authrefresh request [METHOD] PATH [flags]                 call the API with the profile's token
//	authrefresh token [--profile P]                           print a valid access token
//	authrefresh logout [--profile P]                          revoke the refresh token and forget the session
//	authrefresh status [--profile P] [--output json]          show the profiles and their sessions (no token printed)
//	authrefresh proxy --upstream URL [flags]                  sidecar: forward 127.0.0.1:9000 to URL with the token
//	authrefresh bff --issuer URL [flags]                      serve a browser app and its APIs; its users' tokens stay on the server
//	authrefresh kubeconfig [--profile P] [--name USER]        print the kubeconfig user whose exec plugin is this profile's token
//	authrefresh git-credential [--profile P] get|store|erase  git's credential helper: the profile's token as the password for its API host
//	authrefresh docker-credential get|store|erase|list        docker's credential helper (run as docker-credential-authrefresh)
//	authrefresh seal-key FILE                                 create or rotate the keys that seal tokens at rest
//	authrefresh completion bash|zsh|fish                      print a shell completion script
//	authrefresh version                                       print the version
//	authrefresh help [COMMAND]                                print this help, or a command's
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
)

// version, if set at build time with -ldflags "-X main.version=...", is
// printed by "authrefresh version"; else the build information is.
var version = ""

// Exit codes, documented in --help.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed (a demo request failed, the server could not start)
	exitUsage   = 2 // bad flags or arguments
	exitHTTP    = 3 // the API answered with an error status (4xx/5xx)
	exitLogin   = 4 // not logged in, wrong credentials, or the session expired: run authrefresh login
	exitNetwork = 5 // the API or the auth server could not be reached, or is failing for now
	exitConfig  = 6 // something local to fix: a URL that is no login endpoint, a token file's permissions

	exitInterrupted = 130 // stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	args := os.Args[1:]
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == dockerHelperName {
		args = append([]string{"docker-credential"}, args...) // docker runs its helper by that name
	}
	code := run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	if ctx.Err() != nil && code != exitOK {
		code = exitInterrupted // what a shell expects of Ctrl-C
	}
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		name = "help"
	case "--version":
		name = "version"
	}
	var err error
	if c := lookup(name); c != nil {
		err = c.run(ctx, args[1:], stdio{stdin, stdout, stderr})
	} else {
		err = unknownCommand(name)
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var docker dockerError
	if errors.As(err, &docker) {
		fmt.Fprintln(stdout, docker.msg) // docker's helper client reads the reason from stdout
		return exitFailure
	}
	code, msg := explain(err)
	fmt.Fprintln(stderr, msg)
	return code
}

// versionString is the -ldflags version, else the module version, the VCS
// revision and the Go version of the build.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "authrefresh " + firstNonEmpty(version, "(no build information)")
	}
	v := firstNonEmpty(version, info.Main.Version)
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, modified, when string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		case "vcs.time":
			when = " " + s.Value
		}
	}
	out := "authrefresh " + v
	if rev != "" {
		out += fmt.Sprintf(" (revision %.12s%s%s)", rev, when, modified)
	}
	return out + " built with " + info.GoVersion
}

// usageError is a mistake in the command line; cmd names the command whose
// --help explains it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// newFlagSet returns a FlagSet whose --help prints the synopsis, the flags
// and examples. Parse errors are not printed by the flag package: parseFlags
// returns them, and run prints each once, with a one-line hint.
func newFlagSet(name, synopsis, examples string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(stderr) // PrintDefaults writes there
		defer fs.SetOutput(io.Discard)
		fmt.Fprintf(stderr, "Usage: authrefresh %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nExamples:\n%s", examples)
	}
	return fs
}

// flagsFromEnv sets each of fs's flags from the environment variable
// prefix+NAME (the flag's name in upper case, - as _) where one is set, as
// its default: the command line, parsed after, wins. A repeatable flag
// takes a comma-separated list. A value the flag refuses is a usage error
// that names the variable.
func flagsFromEnv(fs *flag.FlagSet, prefix string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok || err != nil {
			return
		}
		values := []string{v}
		if _, repeatable := f.Value.(*listFlag); repeatable {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if serr := fs.Set(f.Name, strings.TrimSpace(one)); serr != nil {
				err = usageError{fmt.Sprintf("%s=%q: %v", name, v, serr)}
				return
			}
		}
	})
	return err
}

// parseFlags turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return flagError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}

// parse is fs.Parse with its errors as usage errors. The flag package
// prints the usage on any error; only --help should.
func parse(fs *flag.FlagSet, args []string) error {
	help := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	if errors.Is(err, flag.ErrHelp) {
		help()
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return flagError(fs, err.Error())
}

func flagError(fs *flag.FlagSet, msg string) error {
	return usageError{fmt.Sprintf("%s: %s\nRun 'authrefresh %s --help' for its flags and examples.", fs.Name(), msg, fs.Name())}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
