package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The completion scripts come from the table and each command's own flags;
// bash's, sourced into a real bash, completes a command and its flags.
func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		if os.Getenv("AUTHREFRESH_REQUIRE_BASH") != "" {
			t.Fatalf("AUTHREFRESH_REQUIRE_BASH is set but there is no bash: %v", err)
		}
		t.Skip("no bash to source the completion script into (AUTHREFRESH_REQUIRE_BASH makes this a failure)")
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
