package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFixtures(t *testing.T) {
	cases := []struct {
		file string
		want string // substring of the error; "" = valid
	}{
		{"min.yaml", ""},
		{"unknown_key.yaml", "unknown_key.yaml:4:3: upstream.retries: unknown key"},
		{"unknown_key_list.yaml", "unknown_key_list.yaml:5:5: rate_limits[0].burts: unknown key"},
		{"bad_facet.yaml", "bad_facet.yaml:8:12: rate_limits[1].facet: \"thing\" is not"},
		{"duplicate_rule.yaml", "duplicate_rule.yaml:5:11: rate_limits[1].name: duplicate rule name \"per-ip\""},
		{"reserved_rule.yaml", "reserved_rule.yaml:4:11: rate_limits[0].name: name \"upstream\" is one of warden's own rules: the ledger could not tell the two apart"},
		{"reserved_rule.yaml", "reserved_rule.yaml:9:14: ration.budgets[0].name: name \"ban\" is one of warden's own rules"},
		{"bad_rate.yaml", "bad_rate.yaml:4:11: rate_limits[0].rate:"},
		{"bad_route_pattern.yaml", `bad_route_pattern.yaml:6:36: rate_limits[0].routes[1]: route "GET /v1/users/{id": segment "{id": a wildcard must be a whole segment`},
		{"bad_upstream.yaml", "bad_upstream.yaml:2:8: upstream.url: scheme \"ftp\""},
		{"bad_type.yaml", "bad_type.yaml:2:3: cannot unmarshal"},
		{"allow_unknown_rule.yaml", "allow_unknown_rule.yaml:8:21: allow[0].rules[1]: no rate limit is named \"per-nothing\""},
		{"bad_store.yaml", "bad_store.yaml:2:12: store.backend"},
		{"two_docs.yaml", "more than one YAML document"},
		{"bad_underscore_headers.yaml", "bad_underscore_headers.yaml:2:23: server.underscore_headers: \"strip\" is not drop or keep"},
		{"bad_encoded_slashes.yaml", "bad_encoded_slashes.yaml:2:20: server.encoded_slashes: \"decode\" is not reject or keep"},
		{"exempt_unverified_app.yaml", "exempt_unverified_app.yaml:3:12: allow[0].apps[0]: exempts app \"partner-app\", but identity.app.keys registers no app keys"},
		{"exempt_unverified_app.yaml", "exempt_unverified_app.yaml:6:88: ration.budgets[0].exempt.apps[0]: exempts app"},
		{"bad_front.yaml", "bad_front.yaml:1:8: front: \"evloop\" is not auto, loop, fast or std"},
		{"loop_https.yaml", "loop_https.yaml:1:8: front: loop speaks cleartext to the upstream"},
		{"loop_tls.yaml", "loop_tls.yaml:1:8: front: loop serves cleartext HTTP/1.1 only"},
		{"bad_unverified.yaml", "bad_unverified.yaml:4:17: identity.account.unverified: \"forward\" is not refuse or strip"},
		{"bad_unregistered.yaml", "bad_unregistered.yaml:3:19: identity.app.unregistered: \"allow\" is not refuse or strip"},
		{"bad_subject_pattern.yaml", "bad_subject_pattern.yaml:4:22: identity.account.subject_pattern: error parsing regexp: missing closing ]"},
		{"bad_missing_created.yaml", "bad_missing_created.yaml:4:22: identity.account.missing_created: \"newest\" is not youngest or oldest"},
		{"bad_snapshot_interval.yaml", "bad_snapshot_interval.yaml:4:24: store.memory.snapshot_interval: 100ms is below 1s"},
		{"memory_dir_with_redis.yaml", "memory_dir_with_redis.yaml:5:10: store.memory.dir: keeps the memory store's state"},
		{"memory_dir_is_ledger_dir.yaml", "memory_dir_is_ledger_dir.yaml:3:10: store.memory.dir: /var/lib/warden is also ledger.dir: the state and the ledger each need a directory of their own"},
		{"redis_with_memory.yaml", "redis_with_memory.yaml:4:5: store.redis: is set but store.backend is memory"},
		{"redis_without_backend.yaml", "redis_without_backend.yaml:3:5: store.redis: is set but store.backend is memory"},
		{"bad_redis_lease.yaml", "bad_redis_lease.yaml:5:21: store.redis.lease.tokens: -1 is outside 1..4096 (1: no leases)"},
		{"bad_redis_lease.yaml", "bad_redis_lease.yaml:5:30: store.redis.lease.ttl: 1m30s is outside 1ms..1m0s"},
		{"bad_ledger.yaml", "bad_ledger.yaml:3:19: ledger.fsync_interval: 1ms is below 10ms"},
		{"bad_ledger.yaml", "bad_ledger.yaml:5:14: ledger.retention.max_age: 10m0s is below 1h"},
		{"bad_ledger_max_age_zero.yaml", "bad_ledger_max_age_zero.yaml:4:14: ledger.retention.max_age: 0 does not mean \"keep everything\" (max_bytes' 0 does): the ledger always has an age bound; give one of at least 1h (87600h is ten years), or leave it out for the default 720h"},
		{"bad_ledger_partition.yaml", "bad_ledger_partition.yaml:3:23: ledger.partition_accesses: 10 is not between 100 and 10000000"},
		{"ledger.yaml", ""},
		{"spool_is_ledger_dir.yaml", "spool_is_ledger_dir.yaml:9:18: ledger.clickhouse.spool.dir: /var/lib/warden/ledger/ is also ledger.dir: each needs a directory of its own"},
		{"spool_is_state_dir.yaml", "spool_is_state_dir.yaml:8:18: ledger.clickhouse.spool.dir: /var/lib/warden/state is also store.memory.dir: each needs a directory of its own"},
		{"bad_admin_tls.yaml", "bad_admin_tls.yaml:3:8: admin.tls: cert_file and key_file go together"},
		{"bad_clickhouse.yaml", "bad_clickhouse.yaml:4:31: ledger.clickhouse.addrs[1]: \":8123\" has no host"},
		{"bad_clickhouse.yaml", "bad_clickhouse.yaml:4:40: ledger.clickhouse.addrs[2]: port \"0\" is not a number in 1..65535"},
		{"bad_clickhouse.yaml", "bad_clickhouse.yaml:4:49: ledger.clickhouse.addrs[3]: port \"99999\" is not a number in 1..65535"},
		{"bad_clickhouse.yaml", "bad_clickhouse.yaml:5:10: ledger.clickhouse.tls.enabled: is false but other tls settings are set"},
		{"bad_ledger_queue_full.yaml", "bad_ledger_queue_full.yaml:3:15: ledger.queue_full: \"block\" is not drop or wait"},
		{"bad_ledger_queue_wait.yaml", "bad_ledger_queue_wait.yaml:4:15: ledger.queue_wait: 5s is not between 1ms and 1s (a request waits that long)"},
		{"canary.yaml", ""},
		{"dashboard.yaml", ""},
		{"bad_dashboard.yaml", "bad_dashboard.yaml:2:20: dashboard.trace_max_bytes: 1000 is not between 1048576 (1 MiB) and 1099511627776 (1 TiB)"},
		{"bad_dashboard.yaml", "bad_dashboard.yaml:3:18: dashboard.trace_timeout: 500ms is not between 1s and 24h"},
		{"bad_dashboard.yaml", "bad_dashboard.yaml:4:19: dashboard.login_failures: 2000 is not between 1 and 1000"},
		{"bad_dashboard.yaml", "bad_dashboard.yaml:5:17: dashboard.login_window: 48h0m0s is not between 1s and 24h"},
		{"bad_dashboard.yaml", "bad_dashboard.yaml:6:26: dashboard.ledger_cache_accesses: 10 is not between 1000 and 100000000"},
		{"bad_dashboard_negative.yaml", "bad_dashboard_negative.yaml:2:20: dashboard.trace_max_bytes: -1 is not between"},
		{"bad_dashboard_negative.yaml", "bad_dashboard_negative.yaml:3:19: dashboard.login_failures: -3 is not between 1 and 1000"},
		{"bad_dashboard_negative.yaml", "bad_dashboard_negative.yaml:4:26: dashboard.ledger_cache_accesses: -5 is not between 1000 and 100000000"},
		{"bad_canary.yaml", "bad_canary.yaml:3:8: canary.ids: range of 101 ids is too small: at least 1073741824 needed"},
		{"bad_canary.yaml", "bad_canary.yaml:4:12: canary.phones[0]: \"+1555010xxxx\" gives +15550100000, which libphonenumber does not judge valid"},
		{"bad_canary.yaml", "bad_canary.yaml:5:12: canary.density: 0.5 is not in (0, 0.1]"},
		{"bad_canary.yaml", "bad_canary.yaml:6:14: canary.anonymous: \"nobody\" is not upstream or answer"},
		{"bad_canary_page.yaml", "bad_canary_page.yaml:3:36: canary.page.default: 60 is not between 1 and page.max (50)"},
		{"bad_canary_page.yaml", "bad_canary_page.yaml:3:17: canary.page.limit: \"li mit\" is not a query parameter name"},
		{"bad_canary_page_limit.yaml", "bad_canary_page_limit.yaml:4:12: canary.page.limit: \"page%5Bsize%5D\" is escaped: name the parameter as the platform reads it, unescaped (page[size])"},
		{"bad_canary_search_query.yaml", "bad_canary_search_query.yaml:4:19: canary.routes.search_query: \"q;\" is not a query parameter name"},
		{"bad_canary_page_max.yaml", "bad_canary_page_max.yaml:4:10: canary.page.max: 20000 is not between 1 and 10000"},
		{"bad_ledger_privacy.yaml", "bad_ledger_privacy.yaml:4:17: ledger.privacy.budget_rho: \"-1\" is not a non-negative number"},
		{"bad_ledger_privacy.yaml", "bad_ledger_privacy.yaml:6:14: ledger.privacy.researchers.alice: \"lots\" is not a non-negative number"},
		{"bad_identified.yaml", "bad_identified.yaml:6:17: rate_limits[0].identified: \"own\" applies to ip, net and fingerprint, not account"},
		{"bad_mode.yaml", "bad_mode.yaml:6:11: rate_limits[0].mode: \"dry-run\" is not enforce or shadow"},
		{"bad_class.yaml", "bad_class.yaml:7:40: ration.budgets[0].class: class \"contcat\" is not a class of any route in inspect.routes"},
		{"bad_class.yaml", "bad_class.yaml:9:15: ration.scopes[0].class: class \"contacts\" is not a class"},
		{"bad_class.yaml", "bad_class.yaml:10:37: ration.unreferenced.classes[1]: class \"emails\" is not a class"},
		{"bad_class.yaml", "bad_class.yaml:11:49: ration.fanout_cap.classes[0]: class \"Contact\" is not a class"},
		{"bad_class.yaml", "bad_class.yaml:14:10: detect.class: class \"phone\" is not a class"},
		{"bad_budget_mode.yaml", "bad_budget_mode.yaml:4:97: ration.budgets[0].mode: \"audit\" is not enforce or shadow"},
		{"bad_route_cursor.yaml", "bad_route_cursor.yaml:8:15: inspect.routes[0].cursor: \"page%5Bafter%5D\" is escaped: name the parameter as the platform reads it, unescaped (page[after])"},
		{"bad_route_provenance.yaml", "bad_route_provenance.yaml:8:19: inspect.routes[0].provenance: \"found\" is not social, search or list"},
		{"own_provenance_without_list.yaml", "own_provenance_without_list.yaml:8:23: inspect.routes[0].own_provenance: applies when the list parameter is the caller's account; the route has no list"},
		{"provenance_without_links.yaml", "provenance_without_links.yaml:8:19: inspect.routes[0].provenance: says how the ids in links were shown; the route has no links"},
		{"bad_budget_provenance.yaml", "bad_budget_provenance.yaml:7:92: ration.budgets[0].provenance[1]: \"feed\" is not social, search, list or unreferenced"},
		{"bad_budget_provenance_twice.yaml", "bad_budget_provenance_twice.yaml:7:98: ration.budgets[0].provenance[2]: \"search\" is named twice"},
		{"bad_budget_provenance_empty.yaml", "bad_budget_provenance_empty.yaml:7:83: ration.budgets[0].provenance: must name at least one of social, search, list, unreferenced (left out, the budget counts every record)"},
		{"bad_detect_provenance.yaml", "bad_detect_provenance.yaml:8:79: detect.rules[0].provenance: only a cohort rule counts by provenance, not velocity"},
		{"bad_detect_provenance.yaml", "bad_detect_provenance.yaml:9:84: detect.rules[1].provenance[1]: \"feed\" is not social, search, list or unreferenced"},
		{"bad_fanout_cap_twice.yaml", "bad_fanout_cap_twice.yaml:10:32: ration.fanout_cap.provenance[2]: \"list\" is named twice"},
		{"bad_clickhouse_without_backend.yaml", "bad_clickhouse_without_backend.yaml:5:12: ledger.clickhouse.addrs: set, but backend is \"local\": a fleet's shared ledger needs backend: clickhouse (or remove the clickhouse section)"},
		{"bad_account_without_verifier.yaml", "bad_account_without_verifier.yaml:3:32: rate_limits[0].facet: counts accounts, but identity.account verifies no token (no secret, public key or JWKS): no request has an account, so it would never apply"},
		{"bad_account_without_verifier.yaml", "bad_account_without_verifier.yaml:6:29: allow[0].accounts: identity.account verifies no token"},
		{"budget_provenance_without_unreferenced.yaml", "budget_provenance_without_unreferenced.yaml:7:83: ration.budgets[0].provenance: needs the unreferenced section"},
		{"fanout_cap.yaml", ""},
		{"fanout_cap_without_unreferenced.yaml", "fanout_cap_without_unreferenced.yaml:7:5: ration.fanout_cap: needs the unreferenced section"},
		{"bad_fanout_cap.yaml", "bad_fanout_cap.yaml:8:12: ration.fanout_cap.limit: must be 1 to 64, got 100"},
		{"bad_fanout_cap.yaml", "bad_fanout_cap.yaml:9:13: ration.fanout_cap.window: must be positive, got 0s"},
		{"bad_fanout_cap.yaml", "bad_fanout_cap.yaml:10:11: ration.fanout_cap.hold: must not be negative, got -1m0s"},
		{"bad_fanout_cap.yaml", `bad_fanout_cap.yaml:11:26: ration.fanout_cap.provenance[1]: must be search or list, got "social"`},
		{"bad_fanout_cap.yaml", `bad_fanout_cap.yaml:12:11: ration.fanout_cap.mode: "dry-run" is not enforce or shadow`},
		{"bad_fanout_cap_type.yaml", "bad_fanout_cap_type.yaml:5:5: cannot unmarshal !!str `three` into int"},
		{"exempt_unregistered_app.yaml", "exempt_unregistered_app.yaml:6:25: allow[0].apps[1]: \"parnter-app\" is not an app registered"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", c.file))
			if c.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
		})
	}
}

func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples/*.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Setenv("WARDEN_ADMIN_TOKEN", "x")
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte("listen: 127.0.0.1:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream.URL != "http://127.0.0.1:8081" || c.Front != FrontAuto || c.Store.Backend != StoreMemory ||
		c.Admin.TokenEnv != "WARDEN_ADMIN_TOKEN" || c.Server.ShutdownTimeout != 15*time.Second || c.Server.EncodedSlashes != EncodedSlashesReject ||
		c.Store.Memory.Dir != "" || c.Store.Memory.SnapshotInterval != 30*time.Second {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestParseRate(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"20/s", 50 * time.Millisecond, true},
		{"600/m", 100 * time.Millisecond, true},
		{"1/h", time.Hour, true},
		{"0.5/s", 2 * time.Second, true},
		{"0/s", 0, false},
		{"20", 0, false},
		{"20/w", 0, false},
		{"-1/s", 0, false},
	}
	for _, c := range cases {
		got, err := ParseRate(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	if _, err := Load(empty); err == nil || !strings.Contains(err.Error(), "empty config") {
		t.Fatalf("empty: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "nope.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}

// The dashboard's keys default to what the dashboard did before they
// existed: 2 GiB and 30 minutes an upload, 5 failed sign-ins a minute.
func TestDashboardDefaults(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "min.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Dashboard{TraceMaxBytes: 2 << 30, TraceTimeout: 30 * time.Minute, LoginFailures: 5, LoginWindow: time.Minute, LedgerCacheAccesses: 2_000_000}
	if c.Dashboard != want {
		t.Fatalf("dashboard defaults %+v, want %+v", c.Dashboard, want)
	}
}
