package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
)

// runCompletion prints a completion script for bash, zsh or fish, made from
// the command table and each command's own flags.
func runCompletion(ctx context.Context, args []string, o stdio) error {
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh" && args[0] != "fish") {
		return usageError{"completion: name a shell: bash, zsh or fish\n  source <(authrefresh completion bash)      # in ~/.bashrc\n  source <(authrefresh completion zsh)       # in ~/.zshrc\n  authrefresh completion fish > ~/.config/fish/completions/authrefresh.fish"}
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	switch args[0] {
	case "bash", "zsh":
		var b strings.Builder
		if args[0] == "zsh" {
			b.WriteString("autoload -U +X bashcompinit && bashcompinit\n")
		}
		fmt.Fprintf(&b, "# %s completion for authrefresh: source <(authrefresh completion %s)\n", args[0], args[0])
		b.WriteString("_authrefresh() {\n  local cur=${COMP_WORDS[COMP_CWORD]}\n")
		fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(names, " "))
		b.WriteString("  case ${COMP_WORDS[1]} in\n")
		fmt.Fprintf(&b, "    help) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", strings.Join(names, " "))
		fmt.Fprintf(&b, "    completion) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", "bash zsh fish")
		for _, c := range commands {
			if flags := flagNames(ctx, c); len(flags) > 0 {
				fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", c.name, "--"+strings.Join(flags, " --"))
			}
		}
		b.WriteString("  esac\n}\ncomplete -o default -F _authrefresh authrefresh\n")
		fmt.Fprint(o.out, b.String())
	case "fish":
		fmt.Fprintln(o.out, "# fish completion for authrefresh: authrefresh completion fish > ~/.config/fish/completions/authrefresh.fish")
		for _, c := range commands {
			fmt.Fprintf(o.out, "complete -c authrefresh -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.short))
			for _, f := range flagNames(ctx, c) {
				fmt.Fprintf(o.out, "complete -c authrefresh -n '__fish_seen_subcommand_from %s' -l %s\n", c.name, f)
			}
		}
	}
	return nil
}

// flagLine is a flag's line in a FlagSet's PrintDefaults.
var flagLine = regexp.MustCompile(`(?m)^  -([a-zA-Z0-9][a-zA-Z0-9-]*)`)

// flagNames are c's flags, read from its own --help: each command declares
// its flags once, in its FlagSet, and completion follows.
func flagNames(ctx context.Context, c *command) []string {
	if c.name == "help" || c.name == "version" || c.name == "completion" {
		return nil
	}
	var help bytes.Buffer
	_ = c.run(ctx, []string{"--help"}, stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &help})
	var names []string
	for _, m := range flagLine.FindAllStringSubmatch(help.String(), -1) {
		if len(m[1]) > 1 { // -H and such are for typing, not completing
			names = append(names, m[1])
		}
	}
	return names
}

// fishQuote quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
