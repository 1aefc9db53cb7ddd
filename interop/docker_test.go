package interop

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
)

// docker's side of a credential helper, with the module docker itself uses
// to call one (docker-credential-helpers/client) running the CLI by the
// name docker gives it, docker-credential-authrefresh: get answers the
// profile's token for its registry (and it works there), another registry
// is "not found", list names the registry, store is refused.
func TestDockerCredentialHelper(t *testing.T) {
	cli := buildCLI(t)
	srv, registry, config := referenceProfile(t, time.Minute)
	helper := filepath.Join(t.TempDir(), "docker-credential-authrefresh")
	if err := os.Symlink(cli, helper); err != nil {
		t.Fatal(err)
	}
	// docker's own way to run a helper, with the profile's directory.
	program := client.NewShellProgramFuncWithEnv(helper, &map[string]string{"AUTHREFRESH_CONFIG_DIR": config})

	host := strings.TrimPrefix(registry, "http://")
	creds, err := client.Get(program, registry)
	if err != nil || creds.Username != "demo" || creds.Secret == "" {
		t.Fatalf("get: %+v %v", creds, err)
	}
	check := httptest.NewRequest("GET", "/api/v1/me", nil)
	check.Header.Set("Authorization", "Bearer "+creds.Secret)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, check)
	if rec.Code != 200 {
		t.Fatalf("the secret docker got is refused by its registry: %d", rec.Code)
	}
	if bare, err := client.Get(program, host); err != nil || bare.Secret != creds.Secret {
		t.Fatalf("get by bare host (as docker names registries): %+v %v", bare, err)
	}
	if _, err := client.Get(program, "registry.example.com"); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("another registry: %v, want docker's 'not found'", err)
	}
	list, err := client.List(program)
	if err != nil || list[registry] != "demo" {
		t.Fatalf("list: %v %v", list, err)
	}
	err = client.Store(program, &credentials.Credentials{ServerURL: registry, Username: "u", Secret: "s"})
	if err == nil || !strings.Contains(err.Error(), "does not store") {
		t.Fatalf("store: %v", err)
	}
	if err := client.Erase(program, registry); err != nil {
		t.Fatalf("erase (docker logout): %v", err)
	}
}
