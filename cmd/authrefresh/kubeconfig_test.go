package main

import (
	"strings"
	"testing"
)

// kubeconfig prints the user whose exec plugin is the profile's token, and
// the kubectl command that adds it; an unknown profile is refused.
func TestKubeconfig(t *testing.T) {
	loggedIn(t)
	code, out, errOut := cli(t, "", "kubeconfig", "--name", "me")
	for _, want := range []string{"# kubectl config set-credentials me --exec-api-version=client.authentication.k8s.io/v1", "users:\n- name: \"me\"\n", "apiVersion: client.authentication.k8s.io/v1", "- \"exec-credential\"\n      - \"--profile\"\n      - \"default\"\n", "AUTHREFRESH_CONFIG_DIR", "interactiveMode: Never"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("kubeconfig lacks %q: %d\n%s%s", want, code, out, errOut)
		}
	}
	if code, _, _ := cli(t, "", "kubeconfig", "--profile", "nope"); code != exitLogin {
		t.Fatalf("kubeconfig for no profile: %d", code)
	}
}
