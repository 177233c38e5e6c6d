package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask may have narrowed it
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  "+testToken+"\n", 0o600)
	group := write("group", testToken+"\n", 0o640)
	world := write("world", testToken+"\n", 0o644)
	empty := write("empty", "\n\t \n", 0o600)
	short := write("short", "abc\n", 0o600)
	inner := write("inner", "abcdefgh ijklmnopqrs\n", 0o600)
	huge := write("huge", strings.Repeat("a", maxTokenFileBytes+1), 0o600)
	t.Setenv("WARDEN_TEST_TOKEN", "\t"+testToken+"\n")
	t.Setenv("WARDEN_TEST_EMPTY", "")

	cases := []struct {
		name, file, env string
		wantErr         string // "" means success with testToken
	}{
		{"file trimmed", good, "", ""},
		{"group-readable file", group, "", ""},
		{"world-readable file", world, "", "accessible to other users"},
		{"missing file", filepath.Join(dir, "absent"), "", "no such file"},
		{"directory", dir, "", "not a regular file"},
		{"empty file", empty, "", "is empty"},
		{"short file", short, "", "at least 16"},
		{"inner whitespace", inner, "", "whitespace"},
		{"huge file", huge, "", "larger than"},
		{"env trimmed", "", "WARDEN_TEST_TOKEN", ""},
		{"env empty", "", "WARDEN_TEST_EMPTY", "is empty"},
		{"env unset", "", "WARDEN_TEST_UNSET_VARIABLE", "not set"},
		{"both", good, "WARDEN_TEST_TOKEN", "not both"},
		{"neither", "", "", "required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := LoadToken(c.file, c.env)
			if c.wantErr == "" {
				if err != nil || tok != testToken {
					t.Fatalf("got %q, %v; want the token", tok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("error reveals the token: %v", err)
			}
		})
	}
}
