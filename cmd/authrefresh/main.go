// Command authrefresh runs the reference auth server (serve) and a load demo
// of one shared, refreshing Session (demo).
//
//	authrefresh serve [flags]   run the reference auth server
//	authrefresh demo [flags]    many workers, one Session, several token lifetimes
//	authrefresh version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/authrefresh/authrefresh"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in --help.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed (a demo request failed, the server could not start)
	exitUsage   = 2 // bad flags or arguments
	exitHTTP    = 3 // the API answered with an error status (4xx/5xx)
	exitLogin   = 4 // not logged in, or the session expired: run authrefresh login
	exitNetwork = 5 // the API or the auth server could not be reached (or the refresh failed transiently)
)

const usage = `authrefresh — call JWT-protected HTTP APIs without thinking about token expiry.

Usage:
  authrefresh serve [flags]                  run the reference auth server (127.0.0.1:8080)
  authrefresh demo [flags]                   many workers through one refreshing Session, with a report
  authrefresh login --url URL [flags]        log in and keep the session in a profile
  authrefresh request [METHOD] PATH [flags]  call the API with the profile's token
  authrefresh token [--profile P]            print a valid access token
  authrefresh logout [--profile P]           revoke the refresh token and forget the session
  authrefresh proxy --upstream URL [flags]   sidecar: forward 127.0.0.1:9000 to URL with the token
  authrefresh version                        print the version

Run 'authrefresh COMMAND --help' for a command's flags and examples.

Exit codes: 0 success, 1 failure, 2 usage error, 3 the API answered an error status,
4 not logged in or session expired (run login), 5 network error or auth server unavailable.
Profiles live in $AUTHREFRESH_CONFIG_DIR, else the user config directory (authrefresh/).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "login":
		err = runLogin(ctx, args[1:], stdin, stdout, stderr)
	case "logout":
		err = runLogout(ctx, args[1:], stderr)
	case "token":
		err = runToken(ctx, args[1:], stdout, stderr)
	case "request":
		err = runRequest(ctx, args[1:], stdin, stdout, stderr)
	case "proxy":
		err = runProxy(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "authrefresh", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "authrefresh: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "authrefresh:", err)
		return exitUsage
	case errors.As(err, new(*httpFailure)):
		fmt.Fprintln(stderr, err)
		return exitHTTP
	case errors.Is(err, authrefresh.ErrSessionExpired), errors.Is(err, authrefresh.ErrNotLoggedIn):
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "log in again: authrefresh login --url URL")
		return exitLogin
	case errors.Is(err, authrefresh.ErrRefreshTransient), isNetworkError(err):
		fmt.Fprintln(stderr, err)
		return exitNetwork
	default:
		fmt.Fprintln(stderr, "authrefresh:", err)
		return exitFailure
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// newFlagSet returns a FlagSet that prints its help with examples.
func newFlagSet(name, synopsis, examples string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: authrefresh %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nExamples:\n%s", examples)
	}
	return fs
}

// parseFlags turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// isNetworkError reports a failure to reach a server.
func isNetworkError(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	return errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout())
}
