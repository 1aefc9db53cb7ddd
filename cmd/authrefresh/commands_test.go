package main

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// The package documentation lists every command of the table, as help
// does, and nothing else: its command lines are the table's.
func TestPackageDocMatchesCommands(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var inDoc []string
	for _, line := range strings.Split(f.Doc.Text(), "\n") {
		if strings.HasPrefix(line, "\tauthrefresh ") {
			inDoc = append(inDoc, strings.TrimPrefix(line, "\t"))
		}
	}
	want := commandLines()
	if strings.Join(inDoc, "\n") != strings.Join(want, "\n") {
		t.Fatalf("main.go's package doc lists other commands than the table; its command lines should read:\n//\t%s", strings.Join(want, "\n//\t"))
	}
}

// Help lists every command; "help COMMAND" is COMMAND --help; a typo gets
// the nearest command; version takes no flags.
func TestCommandTable(t *testing.T) {
	code, out, _ := cli(t, "", "help")
	for _, c := range commands {
		if !strings.Contains(out, "authrefresh "+c.synopsis()) || !strings.Contains(out, c.short) {
			t.Errorf("help (exit %d) does not list %s", code, c.name)
		}
	}
	if code, _, errOut := cli(t, "", "help", "request"); code != exitOK || !strings.Contains(errOut, "Usage: authrefresh request") {
		t.Errorf("help request: %d %s", code, errOut)
	}
	if code, out, _ := cli(t, "", "help", "version"); code != exitOK || !strings.Contains(out, "Usage: authrefresh version") {
		t.Errorf("help version: %d %s", code, out)
	}
	for typo, want := range map[string]string{"requets": "request", "lgoin": "login", "prxy": "proxy", "Token": "token"} {
		if code, _, errOut := cli(t, "", typo); code != exitUsage || !strings.Contains(errOut, `did you mean "`+want+`"?`) {
			t.Errorf("%s: %d %s", typo, code, errOut)
		}
	}
	if code, _, errOut := cli(t, "", "frobnicate"); code != exitUsage || strings.Contains(errOut, "did you mean") {
		t.Errorf("a word near no command: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "help", "nope"); code != exitUsage || !strings.Contains(errOut, "unknown command") {
		t.Errorf("help nope: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "version", "--json"); code != exitUsage || !strings.Contains(errOut, "--json") {
		t.Errorf("version --json: %d %s", code, errOut)
	}
}
