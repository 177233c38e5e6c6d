package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// TestQueryErrorsOnTheCommandLine: a query's error is printed as what was
// wrong, exit status 1, without the admin API's status category ("bad
// request: ", "not found: ") that the same error carries there.
func TestQueryErrorsOnTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir}) // a ledger with nothing in it yet
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	// A directory that is no ledger (a mistyped --ledger) is said, not read
	// as a ledger where nobody took anything.
	other := t.TempDir()
	atFile := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(atFile, []byte("1\n@c.txt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// ledger.dir of a config that is not there: said as the config's.
	missingCfg := filepath.Join(t.TempDir(), "warden.yaml")
	if err := os.WriteFile(missingCfg, []byte("ledger: {dir: "+filepath.Join(other, "missing")+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notThere := "ledger.dir of " + missingCfg + ": stat " + filepath.Join(other, "missing") + ": no such file or directory; give --ledger DIR\n"
	notLedger := "ledger: " + other + " is not a ledger directory (no partitions, key, lock, ids or privacy budgets): is it the gateway's ledger.dir?\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reach", "--authors", "1", "--by", "net", "--ledger", dir}, "warden reach: by: \"net\" is not account, ip\n"},
		{[]string{"ledger", "who-took", "1", "--from", "soon", "--ledger", dir}, "warden ledger who-took: from: \"soon\" is neither RFC 3339 nor a duration back from now\n"},
		{[]string{"ledger", "who-took", "1", "--from", "200000d", "--ledger", dir}, "warden ledger who-took: from: \"200000d\" is out of range: a duration back from now is at most 106751d (about 292 years); give a time in RFC 3339 for one further back\n"},
		{[]string{"reach", "--authors", "1", "--after", "3000000h", "--ledger", dir}, "warden reach: after: \"3000000h\" is out of range: a duration back from now is at most 106751d (about 292 years); give a time in RFC 3339 for one further back\n"},
		{[]string{"explain", "nope", "--ledger", dir}, "warden explain: no request nope in the ledger " + dir + ": the ledger records answers on the route map's routes, refusals and upstream failures, not an answer on a path outside the route map\n"},
		// @FILE among ids: on the command line, where it goes (the API's
		// "send the ids" is for a caller that cannot send a file).
		{[]string{"reach", "--authors", "1,@authors.txt", "--ledger", dir}, "warden reach: --authors: \"@authors.txt\": @FILE must be the whole value of --authors (--authors @FILE), not one of its ids\n"},
		{[]string{"reach", "--authors", "1", "--overlap", "2 @b.txt", "--ledger", dir}, "warden reach: --overlap: \"@b.txt\": @FILE must be the whole value of --overlap (--overlap @FILE), not one of its ids\n"},
		{[]string{"audience", "--accounts", "1,@a.txt", "--ledger", dir}, "warden audience: --accounts: \"@a.txt\": @FILE must be the whole value of --accounts (--accounts @FILE), not one of its ids\n"},
		{[]string{"reach", "--authors", "@" + atFile, "--ledger", dir}, "warden reach: --authors: " + atFile + " holds \"@c.txt\": a file of ids names no other file\n"},
		{[]string{"ledger", "who-took", "1", "--config", missingCfg}, "warden ledger who-took: " + notThere},
		{[]string{"reach", "--authors", "1", "--config", missingCfg}, "warden reach: " + notThere},
		{[]string{"replay", "--config", missingCfg}, "warden replay: " + notThere},
		{[]string{"trace", "-", "--config", missingCfg}, "warden trace: " + notThere},
		{[]string{"ledger", "who-took", "1", "--ledger", other}, "warden ledger who-took: " + notLedger},
		{[]string{"ledger", "took-by", "account", "1", "--ledger", other}, "warden ledger took-by: " + notLedger},
		{[]string{"reach", "--authors", "1", "--ledger", other}, "warden reach: " + notLedger},
		{[]string{"ledger", "verify", "--ledger", other}, "warden ledger verify: " + notLedger},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != 1 || errb.String() != c.want {
			t.Errorf("warden %v: exit %d, stderr %q, want 1 and %q", c.args, code, errb.String(), c.want)
		}
	}
}

// TestTookByFacetValues: took-by reads an ip, a net or a fingerprint in
// any spelling of the identity the ledger holds (its canonical form), and
// refuses one that could never be the facet's value (no address, not 16
// hex digits, longer than any account) rather than answer that it took
// nothing.
func TestTookByFacetValues(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	e := &ledger.Entry{Time: time.Now().UTC(), Route: "GET /v1/users/{id}", Status: 200, Records: []ledger.Record{{ID: "11"}}}
	e.Identity[identify.FacetIP-1] = "192.0.2.7"
	e.Identity[identify.FacetNet-1] = "192.0.2.0/24"
	e.Identity[identify.FacetFingerprint-1] = "ff5994a7c6086629"
	l.Add(e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"ip", "192.0.2.7"}, {"ip", "::ffff:192.0.2.7"}, {"net", "192.0.2.0/24"}, {"net", "192.0.2.7/24"},
		{"fingerprint", "ff5994a7c6086629"}, {"fingerprint", "FF5994A7C6086629"}} {
		var out, errb bytes.Buffer
		if code := run([]string{"ledger", "took-by", c[0], c[1], "--ledger", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), ": 1 accesses") {
			t.Errorf("took-by %s %s: exit %d\n%s%s", c[0], c[1], code, out.String(), errb.String())
		}
	}
	for _, c := range [][3]string{{"ip", "abc", "is not an IP address"}, {"net", "192.0.2.0", "is not a network"},
		{"fingerprint", "ff5994a7c608662", "is not a fingerprint"}, {"fingerprint", "fp-1", "is not a fingerprint"},
		{"fingerprint", "gg5994a7c6086629", "is not a fingerprint"}, {"account", strings.Repeat("7", 257), "is never one"}} {
		var out, errb bytes.Buffer
		if code := run([]string{"ledger", "took-by", c[0], c[1], "--ledger", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), c[2]) {
			t.Errorf("took-by %s %s: exit %d, stderr %q, want %q", c[0], c[1], code, errb.String(), c[2])
		}
	}
}

// TestServeRefusesArguments: `warden serve my.yaml` names a config that
// would be ignored (serve reads --config, default examples/lab.yaml): it is
// a usage error, exit 2, before anything starts.
func TestServeRefusesArguments(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--config", "testdata/none.yaml", "my.yaml"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), `unexpected argument "my.yaml"`) {
		t.Errorf("exit %d, stderr %q; want 2 and the argument named", code, errb.String())
	}
}

// TestHelpIsNoError: the usage asked for (warden --help, warden CMD -h) exits
// 0; a usage error (no command, a flag that does not exist) exits 2.
func TestHelpIsNoError(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"help"}, 0},
		{[]string{"serve", "--help"}, 0},
		{[]string{"lab-sim", "-h"}, 0},
		{[]string{"check-config", "-help"}, 0},
		{[]string{"ban", "ls", "--help"}, 0},
		{[]string{"ledger", "--help"}, 0},
		{[]string{"ledger", "help"}, 0},
		{[]string{"ledger", "who-took", "-h"}, 0},
		{[]string{"ledger", "nope"}, 2},
		{nil, 2},
		{[]string{"serve", "--no-such-flag"}, 2},
		{[]string{"lab-platform", "--seed", "x"}, 2},
		{[]string{"lab-sim", "-p", "naive"}, 2},
		{[]string{"demo", "--duration", "soon"}, 2},
		{[]string{"nope"}, 2},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != c.want {
			t.Errorf("warden %v: exit %d, want %d (%s)", c.args, code, c.want, errb.String())
		}
		if c.want == 0 && strings.Contains(errb.String(), "unknown") {
			t.Errorf("warden %v: the usage asked for says %q", c.args, errb.String())
		}
	}
}

// TestBanMatchable: under examples/lab.yaml (subject_pattern ^[1-9][0-9]*$,
// one registered app) an account ban the pattern refuses and an app ban no
// key names are refused as never matching; a config without them refuses
// neither, but without an account verifier every account ban is refused.
func TestBanMatchable(t *testing.T) {
	t.Setenv("LAB_PARTNER_KEY", "pk-test")
	lab, err := config.Load("../../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		facet, value string
		never        bool
	}{
		{"account", "77", false},
		{"account", " 77", true},
		{"account", "077", true},
		{"app", "partner-app", false},
		{"app", "parnter-app", true},
		{"ip", "192.0.2.1", false},
	} {
		if err := banMatchable(lab, c.facet, c.value); (err != nil) != c.never {
			t.Errorf("%s %q: %v, want never matching %v", c.facet, c.value, err, c.never)
		}
	}
	// An unanchored pattern is applied to the whole subject, as identify
	// applies it: 077 and +77 hold a match of [1-9][0-9]* but never verify.
	unanchored := &config.Config{}
	unanchored.Identity.Account.SubjectPattern = "[1-9][0-9]*"
	unanchored.Identity.Account.Algorithms = []string{"HS256"}
	for value, never := range map[string]bool{"77": false, "077": true, "+77": true, "77x": true} {
		if err := banMatchable(unanchored, "account", value); (err != nil) != never {
			t.Errorf("subject_pattern [1-9][0-9]*, account %q: %v, want never matching %v", value, err, never)
		}
	}
	verified := &config.Config{}
	verified.Identity.Account.Algorithms = []string{"HS256"}
	if err := banMatchable(verified, "account", " 77"); err != nil {
		t.Errorf("no subject_pattern: %v", err)
	}
	// Without a key to verify tokens no request has an account: an
	// account ban would be acknowledged and never refuse anyone.
	if err := banMatchable(&config.Config{}, "account", "77"); err == nil {
		t.Error("no account verifier: an account ban accepted")
	}
	if err := banMatchable(&config.Config{}, "app", "anything"); err != nil {
		t.Errorf("no registered keys: %v", err)
	}
}

// TestWhoTookClassUnseen: without a config to judge --class, a class that
// no Access of the ledger served or masked (a misspelling, a route's
// name) is an error, not "nobody took it"; a class the ledger holds
// answers, rows or none.
func TestWhoTookClassUnseen(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	e := &ledger.Entry{Time: time.Now().UTC(), Route: "GET /v1/users/{id}", Status: 200, Classes: []string{"contact", "profile"},
		Records: []ledger.Record{{ID: "11", Classes: 0b11}}}
	e.Identity[identify.FacetAccount-1] = "7"
	l.Add(e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	// A misspelling, and a name the ledger holds that is no class: the
	// route's.
	for _, class := range []string{"contcat", "GET /v1/users/{id}"} {
		errb.Reset()
		if code := run([]string{"ledger", "who-took", "11", "--class", class, "--ledger", dir}, &out, &errb); code != 1 ||
			!strings.Contains(errb.String(), fmt.Sprintf("no Access in the ledger's window names a class %q", class)) {
			t.Errorf("class %q: exit %d, stderr %q, want 1 and the class named", class, code, errb.String())
		}
	}
	for subject, rows := range map[string]string{"11": "1 identities", "12": "0 identities"} {
		out.Reset()
		errb.Reset()
		if code := run([]string{"ledger", "who-took", subject, "--class", "contact", "--ledger", dir}, &out, &errb); code != 0 ||
			!strings.Contains(out.String(), rows) {
			t.Errorf("who-took %s --class contact: exit %d, out %q, stderr %q, want %s", subject, code, out.String(), errb.String(), rows)
		}
	}
}

// TestAudienceReachSmallThings: a missing required flag prints the usage,
// exit status 2, as a missing argument does; an error is prefixed with the
// command once ("warden audience: followers of ...", not "warden audience:
// audience: ..."); an @FILE's lines starting with '#' are comments.
func TestAudienceReachSmallThings(t *testing.T) {
	for _, args := range [][]string{
		{"audience", "--upstream", "http://127.0.0.1:1", "--no-ledger"},
		{"reach", "--ledger", t.TempDir()},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: warden "+args[0]) || !strings.Contains(errb.String(), "missing --") {
			t.Errorf("warden %v: exit %d, stderr %q; want 2, what is missing and the usage", args, code, errb.String())
		}
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"no such list"}`, http.StatusNotFound)
	}))
	defer srv.Close()
	t.Setenv("WARDEN_TEST_SMALL_TOKEN", "tok")
	var out, errb bytes.Buffer
	want := "warden audience: followers of 17, page 1: 404 Not Found: {\"error\":\"no such list\"}\n"
	if code := run([]string{"audience", "--accounts", "17", "--upstream", srv.URL, "--credential-env", "WARDEN_TEST_SMALL_TOKEN", "--no-ledger"}, &out, &errb); code != 1 || errb.String() != want {
		t.Errorf("audience of a list the upstream does not have: exit %d, stderr %q, want 1 and %q", code, errb.String(), want)
	}

	file := filepath.Join(t.TempDir(), "trolls.txt")
	if err := os.WriteFile(file, []byte("# the trolls, 2026-12\n17\n  # 18 was a mistake\n19, 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v := url.Values{"accounts": {"@" + file}}
	if err := readIDFlags(v, "accounts"); err != nil || v.Get("accounts") != "17,19,20" {
		t.Errorf("@FILE with comments: %q, %v; want 17,19,20", v.Get("accounts"), err)
	}
}

// TestBenchLedgerRefusesNonPositive: `warden bench ledger -accesses 0`
// (or a negative, or 0 identities, subjects, authors or days) is an error
// naming the flag. Before, the generator took 0 for its default and the
// run started on the 100,000,000 Accesses over 30 days (or a
// million identities), and the report said so.
func TestBenchLedgerRefusesNonPositive(t *testing.T) {
	for _, c := range [][2]string{{"accesses", "0"}, {"accesses", "-5"}, {"identities", "0"}, {"subjects", "-1"}, {"authors", "0"}, {"days", "0"}} {
		var out, errb bytes.Buffer
		// Neither row asked: a run that started would end at once.
		args := []string{"bench", "ledger", "-" + c[0], c[1], "-warden=false", "-clickhouse=false"}
		want := "warden bench: bench ledger: -" + c[0] + ": " + c[1] + " is not a positive number\n"
		if code := run(args, &out, &errb); code != 1 || errb.String() != want {
			t.Errorf("warden %v: exit %d, stderr %q, stdout %q; want 1 and %q", args, code, errb.String(), out.String(), want)
		}
	}
}

// Where a bench writes its results is checked before it runs: `bench
// ledger -out` (or -heapprofile) into a directory that does not exist, and
// `bench -out` under a file, are errors naming the flag, with nothing run
// and nothing printed. Before, bench ledger found out after the run
// (hours at its default size), having printed the report, and bench after
// its rounds.
func TestBenchOutCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "report.md")
	small := []string{"-accesses", "1000", "-identities", "10", "-subjects", "10", "-authors", "10", "-days", "1", "-clickhouse=false"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"bench", "ledger", "-out", missing}, small...), "warden bench: bench ledger: -out: stat " + filepath.Dir(missing) + ": no such file or directory\n"},
		{append([]string{"bench", "ledger", "-heapprofile", missing}, small...), "warden bench: bench ledger: -heapprofile: stat " + filepath.Dir(missing) + ": no such file or directory\n"},
		{append([]string{"bench", "ledger", "-out", dir}, small...), "warden bench: bench ledger: -out: " + dir + " is a directory\n"},
		{[]string{"bench", "-out", filepath.Join(file, "results"), "-rows", "a", "-rounds", "1", "-duration", "1s", "-warmup", "0", "-latency-duration", "0", "-profile=false"},
			"warden bench: -out: mkdir " + file + ": not a directory\n"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != 1 || errb.String() != c.want || out.Len() != 0 {
			t.Errorf("warden %v: exit %d, stderr %q, stdout %.200q; want 1, %q and nothing run", c.args, code, errb.String(), out.String(), c.want)
		}
	}
	// A file that exists is written over after the run, not before it.
	report := filepath.Join(dir, "report.md")
	if err := os.WriteFile(report, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(append([]string{"bench", "ledger", "-out", report, "-warden=false"}, small...), &out, &errb); code != 0 {
		t.Fatalf("bench ledger -out FILE that exists: exit %d\n%s", code, errb.String())
	}
	if b, _ := os.ReadFile(report); !strings.Contains(string(b), "warden bench ledger") {
		t.Errorf("report file after the run: %.200q", b)
	}
}
