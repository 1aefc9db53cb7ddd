package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// runKubeconfig prints the kubeconfig user whose exec credential plugin is
// `authrefresh token --output exec-credential` for a profile, and the
// kubectl command that adds it.
func runKubeconfig(_ context.Context, args []string, o stdio) error {
	fs := newFlagSet("kubeconfig", "Print a kubeconfig user (users[].user.exec) that gets its token from a profile,\nand the kubectl command that adds it. kubectl then runs 'authrefresh token --output\nexec-credential' whenever it needs a token; the token is refreshed before it expires.", `  authrefresh kubeconfig --profile cluster
  authrefresh kubeconfig --profile cluster --name me >> ~/.kube/users.yaml
`, o.err)
	name := profileFlag(fs)
	user := fs.String("name", "", "the kubeconfig user's name (default: authrefresh-PROFILE)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := loadProfile(*name); err != nil {
		return inProfile(*name, nil, err)
	}
	command, err := os.Executable()
	if err != nil {
		command = "authrefresh"
	}
	userName := firstNonEmpty(*user, "authrefresh-"+*name)
	pluginArgs := []string{"token", "--output", "exec-credential", "--profile", *name}
	var set []string
	for _, a := range pluginArgs {
		set = append(set, "--exec-arg="+a)
	}
	fmt.Fprintf(o.out, "# kubectl config set-credentials %s --exec-api-version=client.authentication.k8s.io/v1 --exec-command=%s %s --exec-interactive-mode=Never\n", userName, command, strings.Join(set, " "))
	fmt.Fprintf(o.out, "users:\n- name: %s\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: %s\n      args:\n", strconv.Quote(userName), strconv.Quote(command))
	for _, a := range pluginArgs {
		fmt.Fprintf(o.out, "      - %s\n", strconv.Quote(a))
	}
	if dir := os.Getenv("AUTHREFRESH_CONFIG_DIR"); dir != "" {
		fmt.Fprintf(o.out, "      env:\n      - name: AUTHREFRESH_CONFIG_DIR\n        value: %s\n", strconv.Quote(dir))
	}
	fmt.Fprintf(o.out, "      interactiveMode: Never\n")
	return nil
}
