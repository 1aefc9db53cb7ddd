package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// docker's credential helper protocol: get answers the profile's token for
// its registry host (by URL or bare host), "not found" on stdout for any
// other; list names the registry; store is refused on stdout; erase is a
// no-op.
func TestDockerCredential(t *testing.T) {
	_, api, token := loggedIn(t)
	for _, registry := range []string{api, strings.TrimPrefix(api, "http://")} {
		code, out, errOut := cli(t, registry+"\n", "docker-credential", "get")
		var creds struct{ ServerURL, Username, Secret string }
		if code != exitOK || json.Unmarshal([]byte(out), &creds) != nil || creds.Secret != token || creds.Username != "demo" {
			t.Fatalf("get %s: %d %s %s", registry, code, out, errOut)
		}
	}
	if code, out, _ := cli(t, "registry.example.com\n", "docker-credential", "get"); code != exitFailure || out != errDockerNotFound+"\n" {
		t.Fatalf("another registry: %d %q", code, out)
	}
	if code, out, _ := cli(t, "", "docker-credential", "list"); code != exitOK || !strings.Contains(out, `"`+api+`":"demo"`) {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, _ := cli(t, `{"ServerURL":"x","Username":"u","Secret":"s"}`, "docker-credential", "store"); code != exitFailure || !strings.Contains(out, "does not store") {
		t.Fatalf("store: %d %s", code, out)
	}
	if code, _, _ := cli(t, api+"\n", "docker-credential", "erase"); code != exitOK {
		t.Fatalf("erase: %d", code)
	}
}
