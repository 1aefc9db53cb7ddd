// Package safetext makes text that a server sent safe to print: in an
// error message, a log line or a terminal, it can neither steer the
// terminal (escape sequences that retitle a window, clear the screen or
// write the clipboard) nor forge a line.
package safetext

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clip is s made safe to print and short: line breaks and tabs become
// spaces; control characters (C0, DEL, C1), format characters such as
// bidirectional overrides, and invalid UTF-8 are dropped; at most n runes
// are kept, with "…" when some were cut.
func Clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case !visible(r):
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return s
}

// Printable reports whether s holds only characters Clip keeps as they
// are: nothing that steers a terminal, no line break, no tab.
func Printable(s string) bool {
	for _, r := range s {
		if !visible(r) || r == '\t' {
			return false
		}
	}
	return true
}

// Lines is s without what could steer a terminal, its line breaks kept:
// for a program's own multi-line messages that quote a server.
func Lines(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t':
			return ' '
		case !visible(r):
			return -1
		}
		return r
	}, s)
}

// visible reports whether r prints as itself: not a control character
// (but tab), not a format character, not invalid UTF-8.
func visible(r rune) bool {
	return r == '\t' || !(unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError)
}

// httpWrapper matches net/http's `Get "http://…": ` prefix of a *url.Error.
var httpWrapper = regexp.MustCompile(`\b(Get|Head|Post|Put|Patch|Delete|Options) "[^"]*": `)

// Message is err's text for a person: without the library's
// "authrefresh: " prefixes and net/http's `Get "URL": ` wrappers (the URL
// is said elsewhere, and may carry a query), with the library's "failed,
// may pass" as plain "failed" (the caller says what to do instead), and
// safe to print (Lines).
func Message(err error) string {
	msg := strings.ReplaceAll(err.Error(), "authrefresh: ", "")
	msg = strings.ReplaceAll(msg, " failed, may pass", " failed")
	return Lines(httpWrapper.ReplaceAllString(msg, ""))
}
