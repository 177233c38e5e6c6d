package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLedgerInitConfig: a config named with --config must load, also with
// --clickhouse (a typo in its path or YAML made the schema in the default
// database and said it was ready); --print needs no config, and prints the
// named config's database when there is one.
func TestLedgerInitConfig(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("ledger:\n  backend: clickhouse\n   bad: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte("upstream:\n  url: http://127.0.0.1:8081\nledger:\n  backend: clickhouse\n  clickhouse:\n    addrs: [127.0.0.1:1]\n    database: fleetdb\n    spool: {dir: "+filepath.Join(dir, "spool")+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "local.yaml")
	if err := os.WriteFile(local, []byte("upstream:\n  url: http://127.0.0.1:8081\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args       []string
		code       int
		out, inErr string
	}{
		// 127.0.0.1:1 answers nothing: these must fail on the config
		// before any connection is tried.
		{[]string{"ledger", "init", "--clickhouse", "127.0.0.1:1", "--config", filepath.Join(dir, "missing.yaml")}, 1, "", "missing.yaml: no such file"},
		{[]string{"ledger", "init", "--clickhouse", "127.0.0.1:1", "--config", broken}, 1, "", "broken.yaml:3"},
		{[]string{"ledger", "init", "--config", local}, 1, "", "sets no ledger.clickhouse.addrs; give --clickhouse ADDR"},
		{[]string{"ledger", "init"}, 1, "", "give --clickhouse ADDR"},
		{[]string{"ledger", "init", "--print"}, 0, "CREATE DATABASE IF NOT EXISTS warden;", ""},
		{[]string{"ledger", "init", "--print", "--config", fleet}, 0, "CREATE DATABASE IF NOT EXISTS fleetdb;", ""},
		{[]string{"ledger", "init", "--print", "--config", broken}, 1, "", "broken.yaml:3"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errb.String(), c.inErr) {
			t.Errorf("warden %v: exit %d, stdout %.80q, stderr %q; want %d, %q, %q", c.args, code, out.String(), errb.String(), c.code, c.out, c.inErr)
		}
		if c.code != 0 && strings.Contains(errb.String(), "dial") {
			t.Errorf("warden %v tried ClickHouse before its config was read: %s", c.args, errb.String())
		}
	}
}

// TestLedgerOrClickHouse: --ledger and --clickhouse name two ledgers; every
// command taking both refuses them together (reach, who-took and the
// others read ClickHouse and ignored --ledger without a word).
func TestLedgerOrClickHouse(t *testing.T) {
	dir := t.TempDir()
	take := filepath.Join(dir, "take.csv")
	if err := os.WriteFile(take, []byte("id,email\n1,a@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	both := []string{"--ledger", dir, "--clickhouse", "127.0.0.1:1"}
	for _, args := range [][]string{
		{"reach", "--authors", "1"},
		{"ledger", "who-took", "1"},
		{"ledger", "took-by", "account", "1"},
		{"explain", "abc"},
		{"audience", "--accounts", "1"},
		{"trace", take},
	} {
		args = append(args, both...)
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "give --ledger DIR or --clickhouse ADDR, not both") {
			t.Errorf("warden %v: exit %d, stderr %q; want 1 and not both", args, code, errb.String())
		}
	}
}
