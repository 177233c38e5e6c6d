package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// TestTraceServedValues: --served reads an ip or net value in any
// spelling, as took-by does (the ledger holds the canonical form), and
// refuses what could only answer "none": a value that is no network, a
// facet canaries are never keyed by, a misspelt facet, no ledger.
func TestTraceServedValues(t *testing.T) {
	t.Setenv("WARDEN_CANARY_KEY", "trace-served-test-key-0123456789")
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// An anonymous reader (its canaries keyed by its net) fetching 300
	// followers pages of 40 (a page of canary.page.max, 50, has no room
	// for a canary).
	now := time.Now().UTC()
	for list := range 300 {
		e := &ledger.Entry{Time: now, Route: "GET /v1/users/{id}/followers", List: strconv.Itoa(list + 1), Status: 200}
		for i := range 40 {
			e.Records = append(e.Records, ledger.Record{ID: strconv.Itoa(1000 + list*50 + i)})
		}
		e.Identity[identify.FacetIP-1] = "192.0.2.7"
		e.Identity[identify.FacetNet-1] = "192.0.2.0/24"
		l.Add(e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	served := func(value string) int {
		var out, errb bytes.Buffer
		if code := run([]string{"trace", "--served", "net", value, "--ledger", dir, "--json"}, &out, &errb); code != 0 {
			t.Fatalf("--served net %s: exit %d: %s", value, code, errb.String())
		}
		var got struct {
			Value    string
			Canaries []json.RawMessage
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Value != "192.0.2.0/24" {
			t.Fatalf("--served net %s: value %q (%v)", value, got.Value, err)
		}
		return len(got.Canaries)
	}
	n := served("192.0.2.0/24")
	if n == 0 {
		t.Fatal("no canary served in 12,000 list records")
	}
	if m := served("192.0.2.7/24"); m != n {
		t.Errorf("--served net 192.0.2.7/24: %d canaries, 192.0.2.0/24: %d", m, n)
	}
	// After a rotation the replay is under the new key: said, not hidden.
	t.Setenv("WARDEN_CANARY_KEY", "the-next-key-0123456789abcdef,trace-served-test-key-0123456789")
	var out, errb bytes.Buffer
	if code := run([]string{"trace", "--served", "net", "192.0.2.0/24", "--ledger", dir}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "before the last rotation") {
		t.Errorf("--served with two keys: exit %d, stderr %q", code, errb.String())
	}
	t.Setenv("WARDEN_CANARY_KEY", "trace-served-test-key-0123456789")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--served", "net", "192.0.2.7", "--ledger", dir}, "is not a network"},
		{[]string{"--served", "ip", "192.0.2.7", "--ledger", dir}, "never by ip"},
		{[]string{"--served", "acount", "4321", "--ledger", dir}, `"acount": not a facet`},
		{[]string{"--served", "account", "4321"}, "no ledger"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"trace"}, c.args...), &out, &errb); code != 1 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("trace %v: exit %d, stderr %q, want %q", c.args, code, errb.String(), c.want)
		}
	}
}

// TestTraceUnreadableCopy: a copy trace finds no record in (empty, not
// text, a container it does not open) is an error, never a report that
// accuses nobody; a bad flag value is named before the usage.
func TestTraceUnreadableCopy(t *testing.T) {
	t.Setenv("WARDEN_CANARY_KEY", "")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var zst bytes.Buffer
	zw, _ := zstd.NewWriter(&zst)
	zw.Write([]byte(`{"id":"17","username":"lena.morgan_4821173"}` + "\n"))
	zw.Close()
	good := write("good.ndjson", []byte(`{"id":"17","username":"lena.morgan_4821173"}`+"\n"))
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{write("empty.csv", nil)}, 1, "no record read from the copy"},
		{[]string{write("binary.bin", bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000))}, 1, "no record read from the copy"},
		{[]string{write("copy.ndjson.zst", zst.Bytes())}, 1, "zstd-compressed"},
		{[]string{write("social.dump", append([]byte("PGDMP\x01\x0e\x00\x04\x08\x01\x01"), make([]byte, 64)...))}, 1, "pg_dump archive (custom format), which trace does not read: print it as SQL first (pg_restore -f - FILE | warden trace -)"},
		{[]string{good, "--false-accusation", "2"}, 2, "--false-accusation 2: the probability must be above 0 and below 1"},
		{[]string{good, "--named-min", "0"}, 2, "--named-min 0: at least 1"},
		{[]string{"--json"}, 2, "no copy to read"},
		{[]string{good, "--workers", "0"}, 2, "--workers 0: at least 1"},
		{[]string{filepath.Join(dir, "missing.csv")}, 1, "open " + filepath.Join(dir, "missing.csv")},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"trace"}, c.args...), &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) || strings.Contains(errb.String(), "trace: trace:") {
			t.Errorf("trace %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
	// One readable copy beside an unreadable one: a report, and a warning
	// naming the one that gave nothing.
	var out, errb bytes.Buffer
	if code := run([]string{"trace", good, filepath.Join(dir, "binary.bin"), "--json"}, &out, &errb); code != 0 ||
		!strings.Contains(errb.String(), "binary.bin: no record in its 4000 bytes") || !strings.Contains(out.String(), `"records":1`) {
		t.Errorf("a copy beside an unreadable one: exit %d\n%s%s", code, out.String(), errb.String())
	}
	// An empty one too (it was passed over in silence).
	out.Reset()
	errb.Reset()
	if code := run([]string{"trace", good, filepath.Join(dir, "empty.csv"), "--json"}, &out, &errb); code != 0 ||
		!strings.Contains(errb.String(), "empty.csv: empty: no record") || !strings.Contains(out.String(), `"records":1`) {
		t.Errorf("a copy beside an empty one: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// TestProgressLine: with the copies' size known the progress is a bar
// over their bytes (a gzip'd copy's own, not the decompressed ones'),
// else a count; the speed is of what was read.
func TestProgressLine(t *testing.T) {
	for _, c := range []struct {
		read, in, total int64
		want            string
	}{
		{40e6, 25e6, 100e6, "trace: [=======                       ]  25% of 100.0 MB, 40.0 MB read, 20 MB/s"},
		{300e6, 100e6, 100e6, "trace: [==============================] 100% of 100.0 MB, 300.0 MB read, 150 MB/s"},
		{40e6, 0, 0, "trace: 40.0 MB read, 20 MB/s"},
	} {
		if got := progressLine(c.read, c.in, c.total, 2*time.Second); got != c.want {
			t.Errorf("progressLine(%d, %d, %d):\n got %q\nwant %q", c.read, c.in, c.total, got, c.want)
		}
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
	os.WriteFile(a, []byte("id\n1\n"), 0o600)
	os.WriteFile(b, []byte("id\n22\n"), 0o600)
	if n := copySize([]string{a, b}); n != 11 {
		t.Errorf("copySize: %d, want 11", n)
	}
	if n := copySize([]string{a, "-"}); n != 0 {
		t.Errorf("copySize with standard input: %d, want 0 (unknown)", n)
	}
}

// TestTraceContactOnly: records with only an e-mail or a phone are
// counted and said: they give no coverage, and without a key (or a
// ledger, whose served canaries their values are looked up among) no
// canary is found among them.
func TestTraceContactOnly(t *testing.T) {
	t.Setenv("WARDEN_CANARY_KEY", "")
	p := filepath.Join(t.TempDir(), "contacts.csv")
	os.WriteFile(p, []byte("email;phone\nlena41@mail.example;+12125123456\nnoah7@inbox.example;+447400123456\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"trace", p, "--json"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), `"contact_only":2`) || !strings.Contains(errb.String(), "2 of the 2 records have an e-mail or phone and no id or username: they give no ledger coverage, and without a canary key") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// TestTraceContactOnlyNoLedger: with a key and no ledger the warning
// asks for one: contact values are looked up among the served canaries.
func TestTraceContactOnlyNoLedger(t *testing.T) {
	t.Setenv("WARDEN_CANARY_KEY", "contact-cli-test-canary-key-0123")
	p := filepath.Join(t.TempDir(), "contacts.csv")
	os.WriteFile(p, []byte("email,phone\nlena.morgan20000000@mail.example,+1 (212) 590-1234\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"trace", p, "--json"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), `"contact_only":1,"contact_canaries":0,"contact_unmatched":1`) ||
		!strings.Contains(errb.String(), "found among those the ledger says were served: give --ledger or --clickhouse") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// TestTraceEmptyLedger: a ledger with no Access yet accuses and names
// nobody, and says so on stderr rather than let "nobody" stand for "no
// evidence"; a directory that is no ledger at all is an error.
func TestTraceEmptyLedger(t *testing.T) {
	t.Setenv("WARDEN_CANARY_KEY", "")
	dir := t.TempDir()
	p := filepath.Join(dir, "copy.ndjson")
	os.WriteFile(p, []byte(`{"id":"17","username":"lena.morgan_4821173"}`+"\n"), 0o600)
	led := filepath.Join(dir, "empty-ledger")
	l, err := ledger.Open(ledger.Options{Dir: led})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"trace", p, "--ledger", led}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "or this is not its ledger") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	notLedger := filepath.Join(dir, "not-a-ledger")
	os.Mkdir(notLedger, 0o700)
	out.Reset()
	errb.Reset()
	if code := run([]string{"trace", p, "--ledger", notLedger}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "is not a ledger directory") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// TestTraceUsernamesOrIDsOnly: a copy of usernames alone, or of ids
// alone, says why it shows what it shows: usernames give no coverage (the
// ledger keeps ids), and canaries' ids with nothing beside them are
// counted apart, not as forgeries.
func TestTraceUsernamesOrIDsOnly(t *testing.T) {
	const key = "trace-only-test-canary-key-0123456789"
	t.Setenv("WARDEN_CANARY_KEY", key)
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "WARDEN_CANARY_KEY"}, key)
	if err != nil {
		t.Fatal(err)
	}
	var names, ids strings.Builder
	names.WriteString("username\nlena.morgan_4821173\n")
	ids.WriteString("17\n")
	for i := range 5 {
		p := c.Canary(0, uint32(1000+i))
		fmt.Fprintf(&names, "%s\n", p.Username)
		fmt.Fprintf(&ids, "%d\n", p.ID)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, json, note string }{
		{"names.csv", names.String(), `"username_only":6`, "6 of the 6 records have a username and no id: they give no ledger coverage"},
		{"ids.txt", ids.String(), `"canary_shaped_rejected":0,"canary_ids_unverified":5`, "5 records hold a canary's id and no username, e-mail or phone: the copy keeps ids only"},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, []byte(tc.body), 0o600)
		var out, errb bytes.Buffer
		if code := run([]string{"trace", p, "--json"}, &out, &errb); code != 0 || !strings.Contains(out.String(), tc.json) || !strings.Contains(errb.String(), tc.note) {
			t.Errorf("%s: exit %d\n%s%s", tc.name, code, out.String(), errb.String())
		}
	}
}
