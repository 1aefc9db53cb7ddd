package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
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

// --profile is declared once for every command that takes it, with
// $AUTHREFRESH_PROFILE as its default.
func TestProfileFlagEverywhere(t *testing.T) {
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	t.Setenv("AUTHREFRESH_PROFILE", "work")
	for _, name := range []string{"login", "request", "token", "logout", "proxy"} {
		_, _, errOut := cli(t, "", name, "--help")
		if !strings.Contains(errOut, "-profile") || !strings.Contains(errOut, `(default "work")`) {
			t.Errorf("%s --help: no --profile defaulting to $AUTHREFRESH_PROFILE:\n%s", name, errOut)
		}
	}
	if code, _, errOut := cli(t, "", "token"); code != exitLogin || !strings.Contains(errOut, `"work"`) {
		t.Errorf("token with AUTHREFRESH_PROFILE=work: %d %s", code, errOut)
	}
}

// The completion scripts come from the table and each command's own flags;
// bash's, sourced into a real bash, completes a command and its flags.
func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	code, script, errOut := cli(t, "", "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: %d %s", code, errOut)
	}
	path := filepath.Join(t.TempDir(), "authrefresh.bash")
	os.WriteFile(path, []byte(script), 0o600)
	for line, want := range map[string]string{
		"authrefresh req":             "request",
		"authrefresh proxy --upst":    "--upstream",
		"authrefresh status --out":    "--output",
		"authrefresh help sta":        "status",
		"authrefresh completion fi":   "fish",
		"authrefresh login --client-": "--client-auth --client-id --client-key-file --client-secret-file",
	} {
		words := strings.Fields(line)
		out, err := exec.Command(bash, "-c", fmt.Sprintf(`source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _authrefresh; echo "${COMPREPLY[*]}"`, path, line, len(words)-1)).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%q completes to %q (%v), want %q", line, strings.TrimSpace(string(out)), err, want)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		code, script, _ := cli(t, "", "completion", shell)
		if code != exitOK || !strings.Contains(script, "request") || !strings.Contains(script, "upstream") {
			t.Errorf("completion %s: %d\n%s", shell, code, script)
		}
	}
	if code, _, errOut := cli(t, "", "completion", "tcsh"); code != exitUsage || !strings.Contains(errOut, "bash, zsh or fish") {
		t.Errorf("completion tcsh: %d %s", code, errOut)
	}
}
