package redis_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis"
)

// TestConfigFixtures decodes each testdata/config/X.yaml, applies defaults,
// validates, and compares the error text with X.want (empty: valid).
func TestConfigFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			var cfg redis.Config
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			dec.KnownFields(true)
			if err := dec.Decode(&cfg); err != nil {
				t.Fatalf("decode: %v", err)
			}
			cfg.SetDefaults()
			got := ""
			if err := cfg.Validate(); err != nil {
				got = err.Error() + "\n"
			}
			if got != string(want) {
				t.Errorf("validate:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestNewFailures(t *testing.T) {
	cases := []struct {
		name        string
		cfg         redis.Config
		want        string
		unavailable bool
	}{
		{"invalid config", redis.Config{}, "redis: config: addrs: at least one host:port is required", false},
		{"missing password file", redis.Config{Addrs: []string{"127.0.0.1:1"}, PasswordFile: "testdata/no-such-file"}, "redis: password_file:", false},
		{"unset password variable", redis.Config{Addrs: []string{"127.0.0.1:1"}, PasswordEnv: "WARDEN_TEST_UNSET_VARIABLE"}, "redis: password_env: variable WARDEN_TEST_UNSET_VARIABLE is not set", false},
		{"missing CA file", redis.Config{Addrs: []string{"127.0.0.1:1"}, TLS: redis.TLSConfig{Enabled: true, CAFile: "testdata/no-such-ca.pem"}}, "redis: tls.ca_file:", false},
		{"nothing listening", redis.Config{Addrs: []string{freeAddr(t)}}, "redis: connect to", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.Addrs != nil {
				c.cfg.SetDefaults()
			}
			s, err := redis.New(context.Background(), c.cfg, redis.Options{})
			if err == nil {
				s.Close()
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("got %q, want prefix %q", err, c.want)
			}
			if errors.Is(err, store.ErrUnavailable) != c.unavailable {
				t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v", !c.unavailable, c.unavailable)
			}
		})
	}
}
