package demo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The embedded lab config runs with a fresh admin token from a variable of
// the demo's own, the platform's secret and the partner's key.
func TestWardenConfigFromTheEmbeddedExample(t *testing.T) {
	t.Setenv("LAB_JWT_SECRET", "")
	os.Unsetenv("LAB_JWT_SECRET")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	path, env, _, err := wardenConfig("", dir, tokenFile, "s3cret", "pk-1", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc labDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Admin.TokenEnv != "WARDEN_DEMO_ADMIN_TOKEN" {
		t.Errorf("admin token from %q", doc.Admin.TokenEnv)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LAB_JWT_SECRET=s3cret", "LAB_PARTNER_KEY=pk-1", "WARDEN_DEMO_ADMIN_TOKEN=" + strings.TrimSpace(string(tok))} {
		if !slices.Contains(env, want) {
			t.Errorf("env %q lacks %q", env, want)
		}
	}
	if strings.Contains(string(b), "pk-1") || strings.Contains(string(b), "s3cret") {
		t.Error("a secret was written into the config")
	}
}

// A config of the user's runs as it is, its token variable set only when
// the environment leaves it unset.
func TestWardenConfigOfTheUser(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(file, []byte("admin:\n  token_env: MY_TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MY_TOKEN", "")
	os.Unsetenv("MY_TOKEN")
	path, env, _, err := wardenConfig(file, dir, filepath.Join(dir, "tok"), "s", "k", false)
	if err != nil || path != file || len(env) != 1 || !strings.HasPrefix(env[0], "MY_TOKEN=") {
		t.Fatalf("%q %q %v", path, env, err)
	}
	t.Setenv("MY_TOKEN", "set")
	if _, env, _, _ := wardenConfig(file, dir, filepath.Join(dir, "tok"), "s", "k", false); len(env) != 0 {
		t.Fatalf("env %q, want the variable left as set", env)
	}
}
