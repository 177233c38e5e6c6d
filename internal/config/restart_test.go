package config

import (
	"reflect"
	"testing"
)

func TestNeedsRestart(t *testing.T) {
	const redisStore = "store: {backend: redis, redis: {addrs: [\"127.0.0.1:6379\"]}}\n"
	cases := []struct {
		name      string
		old, next string
		want      []string
	}{
		{"same", "", "", nil},
		{"listen", "", "listen: 127.0.0.1:8090\n", []string{"listen"}},
		{"front", "front: fast\n", "front: std\n", []string{"front"}},
		{"front auto to what it resolves to", "front: auto\n", "front: loop\n", nil},
		{"tls", "", "tls: {cert_file: a.pem, key_file: a.key}\n", []string{"front", "tls.cert_file", "tls.key_file"}},
		{"upstream", "", "upstream: {url: \"http://127.0.0.1:9000\"}\n", []string{"upstream.url"}},
		{"upstream to https under auto", "", "upstream: {url: \"https://api.example.com\"}\n", []string{"front", "upstream.url"}},
		{"server", "", "server: {max_body_bytes: 1024}\n", []string{"server.max_body_bytes"}},
		{"server choice", "", "server: {underscore_headers: keep}\n", []string{"server.underscore_headers"}},
		{"admin", "", "admin: {listen: 127.0.0.1:9091}\n", []string{"admin.listen"}},
		{"log", "", "log: {format: text, level: debug}\n", []string{"log.format", "log.level"}},
		{"store backend", "", redisStore, []string{
			"store.backend", "store.redis.addrs", "store.redis.pool_size", "store.redis.dial_timeout",
			"store.redis.read_timeout", "store.redis.write_timeout", "store.redis.key_prefix",
			"store.redis.lease.tokens", "store.redis.lease.ttl",
		}},
		{"store.memory.dir", "", "store: {memory: {dir: /var/lib/warden}}\n", []string{"store.memory.dir"}},
		{"store.memory.snapshot_interval", "", "store: {memory: {snapshot_interval: 1m}}\n", []string{"store.memory.snapshot_interval"}},
		{"store.memory.max_keys", "", "store: {memory: {max_keys: 1000}}\n", []string{"store.memory.max_keys"}},
		{"store.redis.addrs", redisStore, "store: {backend: redis, redis: {addrs: [\"127.0.0.1:6380\"]}}\n", []string{"store.redis.addrs"}},
		{"store.redis.tls", redisStore, "store: {backend: redis, redis: {addrs: [\"127.0.0.1:6379\"], tls: {enabled: true}}}\n", []string{"store.redis.tls.enabled"}},
		{"store.failure", "", "store: {failure: {mode: open}}\n", []string{"store.failure.mode"}},
		{"rate limits reload", "", "rate_limits: [{name: per-ip, facet: ip, rate: 20/s}]\n", nil},
		{"identity reloads", "", "identity: {trusted_proxies: [10.0.0.0/8]}\n", nil},
		{"allow reloads", "", "allow: [{name: office, cidrs: [10.0.0.0/8]}]\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old, err := Parse("old.yaml", []byte("ration: {}\n"+c.old))
			if err != nil {
				t.Fatal(err)
			}
			next, err := Parse("next.yaml", []byte("ration: {}\n"+c.next))
			if err != nil {
				t.Fatal(err)
			}
			if got := NeedsRestart(old, next); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("NeedsRestart = %q, want %q", got, c.want)
			}
			if got := NeedsRestart(next, old); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("NeedsRestart back = %q, want %q", got, c.want)
			}
		})
	}
}

func TestResolveFront(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"{}\n", FrontLoop},
		{"store: {backend: redis, redis: {addrs: [\"127.0.0.1:6379\"]}}\n", FrontLoop},
		{"upstream: {url: \"https://api.example.com\"}\n", FrontFast},
		{"tls: {cert_file: a.pem, key_file: a.key}\n", FrontStd},
		{"front: fast\n", FrontFast},
		{"front: std\n", FrontStd},
	}
	for _, c := range cases {
		cfg, err := Parse("x.yaml", []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.ResolveFront(); got != c.want {
			t.Errorf("%q: front %s, want %s", c.yaml, got, c.want)
		}
	}
}
