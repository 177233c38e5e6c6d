package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// writtenLedger runs the lab platform and a gateway whose ledger is dir
// (ledgerConfig, contact budget 15), drives ledgerTraffic through it and
// waits until the ledger holds every answer the clients counted in tl.
// The test has failed (and nothing was awaited) when the traffic did.
func writtenLedger(t *testing.T) (platform, dir string, g *gw, tl *tally) {
	platform = startPlatform(t, 2000)
	dir = filepath.Join(t.TempDir(), "ledger")
	g = startGateway(t, ledgerConfig(dir, 15), platform)
	tl = newTally()
	ledgerTraffic(t, g, tl)
	if !t.Failed() {
		t.Logf("ledger caught up %v after the last answer (polled via the CLI)", awaitLedger(t, dir, tl))
	}
	return platform, dir, g, tl
}

// runWarden runs `warden ARGS` in dir ("" for the test's own) with env
// added, and returns its exit status, stdout and stderr.
func runWarden(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("warden %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestLedgerSurface: issue 21's queries as an outsider uses them, against a
// ledger the real gateway wrote from lab traffic: bad input is refused
// with a message naming what was wrong and a non-zero status (never a
// panic), an @FILE is read by the command line only (the admin API
// refuses it rather than read a file on the gateway's host), the admin API
// answers --approx as the command does, every ledger endpoint wants the
// token, and explain's table is plain text.
func TestLedgerSurface(t *testing.T) {
	platform, dir, g, tl := writtenLedger(t)
	if t.Failed() {
		return
	}

	tmp := t.TempDir()
	other, blank := filepath.Join(tmp, "other"), filepath.Join(tmp, "blank")
	os.WriteFile(other, []byte("204\n205\n"), 0o600)
	os.WriteFile(blank, []byte("\n"), 0o600)
	t.Setenv("SURFACE_TOKEN", token(t, "1")) // audience's --credential-env, for every command run
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ledger", "who-took", "25", "--by", "thing", "--ledger", dir}, 1, `by: "thing" is not`},
		{[]string{"ledger", "who-took", "25", "--from", "yesterday", "--ledger", dir}, 1, `from: "yesterday" is neither RFC 3339 nor a duration back from now`},
		{[]string{"ledger", "who-took", "25", "--from", "1h", "--to", "2h", "--ledger", dir}, 1, "to is before from"},
		{[]string{"ledger", "who-took", "25", "--from", "2099-01-01T00:00:00Z", "--ledger", dir}, 1, "from 2099-01-01T00:00:00Z is in the future"},
		{[]string{"reach", "--authors", "200", "--from", "2099-01-01T00:00:00+02:00", "--to", "", "--ledger", dir}, 1, "is in the future"},
		{[]string{"ledger", "who-took", "25", "--ledger", filepath.Join(tmp, "nope")}, 1, "no such file or directory"},
		{[]string{"ledger", "took-by", "thing", "1", "--ledger", dir}, 1, "facet: want app, account, ip, net or fingerprint"},
		{[]string{"ledger", "took-by", "account", "--ledger", dir}, 2, "missing argument"},
		{[]string{"ledger", "verify", "--ledger", dir, "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"reach", "--authors", "200", "--ledger", dir, "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"reach", "--ledger", dir}, 2, "missing --authors"}, // usage, as a missing argument
		{[]string{"reach", "--authors", "@" + filepath.Join(tmp, "nope"), "--ledger", dir}, 1, "--authors: open"},
		{[]string{"reach", "--authors", "200", "--overlap", ",", "--ledger", dir}, 1, "overlap: the set is empty"},
		{[]string{"reach", "--authors", "200", "--overlap", "@" + blank, "--ledger", dir}, 1, "holds no ids"},
		{[]string{"reach", "--authors", "200", "--by", "net", "--ledger", dir}, 1, `by: "net" is not account, ip`},
		{[]string{"reach", "--authors", "200", "--after", "soon", "--ledger", dir}, 1, `after: "soon" is neither`},
		{[]string{"reach", "--authors", "200", "--approx", "--dose", "--ledger", dir}, 1, "approx: answers reach and impressions only"},
		{[]string{"reach", "--authors", "200", "--dp-epsilon", "0.5", "--ledger", dir}, 1, "give --researcher NAME"},
		{[]string{"explain", "nope", "--ledger", dir}, 1, "no request nope"},
		{[]string{"audience", "--accounts", "200", "--upstream", platform, "--credential-env", "SURFACE_TOKEN", "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"audience", "--accounts", "200", "--overlap", ",", "--upstream", platform, "--credential-env", "SURFACE_TOKEN", "--no-ledger"}, 1, "overlap: the set is empty"},
		{[]string{"audience", "--accounts", "200", "--upstream", "platform.example", "--credential-env", "SURFACE_TOKEN", "--no-ledger"}, 1, `--upstream: "platform.example" is not an http or https URL`},
		// A missing ledger is named before any list is paged (the
		// upstream here refuses connections: paging first would fail on it).
		{[]string{"audience", "--accounts", "200", "--upstream", "http://127.0.0.1:1", "--credential-env", "SURFACE_TOKEN", "--ledger", filepath.Join(tmp, "nope")}, 1, "--ledger: stat"},
	} {
		code, out, errOut := runWarden(t, "", nil, c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) || strings.Contains(out+errOut, "panic") || strings.Contains(out+errOut, "goroutine ") {
			t.Errorf("warden %v: exit %d, want %d with %q on stderr; stdout:\n%s\nstderr:\n%s", c.args, code, c.code, c.msg, out, errOut)
		}
	}

	// A misspelt --class is named as no class of the route map (with the
	// gateway's config), on the command line and the admin API; a class
	// of the map nobody was served answers no rows.
	if code, _, errOut := runWarden(t, "", nil, "ledger", "who-took", "25", "--class", "contcat", "--config", g.config); code != 1 ||
		!strings.Contains(errOut, `class: "contcat" is not a class of the route map (contact, profile)`) {
		t.Errorf("who-took --class contcat: exit %d: %s", code, errOut)
	}
	if resp := adminDo(t, g, "GET", "/v1/ledger/who-took?subject=25&class=contcat", ""); resp.status != 400 {
		t.Errorf("admin who-took class=contcat: %d %s, want 400", resp.status, resp.body)
	}
	if code, out, errOut := runWarden(t, "", nil, "ledger", "who-took", "999999", "--class", "contact", "--config", g.config); code != 0 || !strings.Contains(out, "0 identities") {
		t.Errorf("who-took of a subject never served: exit %d\n%s%s", code, out, errOut)
	}

	// Run where the default config (examples/lab.yaml) is not, without
	// --ledger: the message says the default is absent, not that it sets
	// no ledger.dir.
	if code, _, errOut := runWarden(t, tmp, nil, "ledger", "who-took", "25"); code != 1 || !strings.Contains(errOut, "the default config examples/lab.yaml is not here") {
		t.Errorf("who-took without a ledger: exit %d: %s", code, errOut)
	}

	// A DP answer refused past the budget: the JSON has the budget and
	// what remains, and no answer time (nothing was answered).
	code, out, errOut := runWarden(t, "", nil, "reach", "--authors", "200", "--dp-epsilon", "5", "--researcher", "rita", "--ledger", dir, "--json")
	var refused map[string]any
	if code != 1 || json.Unmarshal([]byte(out), &refused) != nil || refused["refused"] != true || refused["remaining_budget"] != "1" ||
		strings.Contains(out, "answered_at") || !strings.Contains(errOut, "exhausted") {
		t.Errorf("DP refusal: exit %d\n%s\n%s", code, out, errOut)
	}

	// --dose asked of authors nobody was served: k = 1 with 0 people, not
	// no dose.
	var nobody map[string]any
	query(t, &nobody, "reach", "--authors", "999999", "--dose", "--ledger", dir)
	if d, ok := nobody["dose"].([]any); !ok || len(d) != 1 || d[0].(map[string]any)["people"] != 0.0 || nobody["reach"] != 0.0 {
		t.Errorf("reach --dose of an author never served: %v", nobody)
	}

	// explain's table: classes as words, not Go maps; without --config it
	// says where the budgets' counts come from.
	code, out, errOut = runWarden(t, "", nil, "explain", tl.refused[0], "--ledger", dir)
	if code != 0 || strings.Contains(out, "map[") || !strings.Contains(out, "classes served none; masked none") || !strings.Contains(out, "budgets and rate limits: not shown; give --config FILE") {
		t.Errorf("explain table: exit %d\n%s%s", code, out, errOut)
	}

	// audience's table with --overlap says which set each list is of.
	code, out, errOut = runWarden(t, "", nil, "audience", "--accounts", "200", "--overlap", "201", "--upstream", platform,
		"--credential-env", "SURFACE_TOKEN", "--ledger", dir, "--rate", "200")
	if code != 0 || !strings.Contains(out, "ACCOUNT  FOLLOWERS  SET") || !regexp.MustCompile(`(?m)^200 +\d+ +accounts$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^201 +\d+ +overlap$`).MatchString(out) {
		t.Errorf("audience table with --overlap: exit %d\n%s%s", code, out, errOut)
	}

	// The admin API: the same approx answer as the command.
	var cli, api struct {
		Reach      int  `json:"reach"`
		Exact      bool `json:"exact"`
		ErrorBound struct {
			Low, High int
		} `json:"error_bound"`
	}
	query(t, &cli, "reach", "--authors", "200,201", "--approx", "--ledger", dir)
	resp := adminDo(t, g, "GET", "/v1/ledger/reach?authors=200,201&approx=true", "")
	if resp.status != 200 || json.Unmarshal([]byte(resp.body), &api) != nil || api != cli || api.Exact || api.Reach == 0 {
		t.Errorf("admin reach approx: %d %s; the command: %+v", resp.status, resp.body, cli)
	}
	// An @FILE is the command line's: the API neither reads it nor takes
	// an empty set for none.
	for _, q := range []string{"authors=@" + other, "authors=200&overlap=@" + other, "authors=200&overlap=,"} {
		resp := adminDo(t, g, "GET", "/v1/ledger/reach?"+q, "")
		if resp.status != 400 {
			t.Errorf("admin reach?%s: %d %s, want 400", q, resp.status, resp.body)
		}
	}
	// audience and replay, the other two queries, answer on the admin API
	// as their commands do: audience on the gateway's own upstream and
	// ledger, replay with the new config POSTed.
	var cliAud, apiAud map[string]any
	query(t, &cliAud, "audience", "--accounts", "200,201", "--overlap", "202", "--dose", "--upstream", platform,
		"--credential-env", "SURFACE_TOKEN", "--ledger", dir, "--rate", "200")
	resp = adminDo(t, g, "GET", "/v1/ledger/audience?accounts=200,201&overlap=202&dose=true&rate=200", "")
	if resp.status != 200 || json.Unmarshal([]byte(resp.body), &apiAud) != nil || !reflect.DeepEqual(apiAud, cliAud) || apiAud["audience"] == 0.0 {
		t.Errorf("admin audience: %d %s; the command: %v", resp.status, resp.body, cliAud)
	}
	if resp := adminDo(t, g, "GET", "/v1/ledger/audience?accounts=200&upstream=http://127.0.0.1:1", ""); resp.status != 400 {
		t.Errorf("admin audience with an upstream of the asker's: %d %s, want 400", resp.status, resp.body)
	}
	tighter := ledgerConfig(dir, 5)
	newCfg := filepath.Join(tmp, "tighter.yaml")
	os.WriteFile(newCfg, []byte(tighter), 0o600)
	var cliRep, apiRep map[string]any
	query(t, &cliRep, "replay", "--config", newCfg)
	resp = adminDo(t, g, "POST", "/v1/ledger/replay", tighter)
	if resp.status != 200 || json.Unmarshal([]byte(resp.body), &apiRep) != nil || !reflect.DeepEqual(apiRep, cliRep) || len(apiRep["newly_masked"].([]any)) == 0 {
		t.Errorf("admin replay: %d %s; the command: %v", resp.status, resp.body, cliRep)
	}
	for _, body := range []string{"", "ration: [", "nonsense: 1"} {
		if resp := adminDo(t, g, "POST", "/v1/ledger/replay", body); resp.status != 400 {
			t.Errorf("admin replay of %q: %d %s, want 400", body, resp.status, resp.body)
		}
	}

	// Every ledger endpoint wants the token (each answered 200 with it
	// above or here).
	for _, p := range []string{"who-took?subject=25", "took-by?facet=account&value=1", "reach?authors=200", "explain?id=" + tl.refused[0], "verify"} {
		if resp := adminDo(t, g, "GET", "/v1/ledger/"+p, ""); resp.status != 200 {
			t.Errorf("admin %s with the token: %d %s", p, resp.status, resp.body)
		}
	}
	for _, p := range []string{"GET who-took?subject=25", "GET took-by?facet=account&value=1", "GET reach?authors=200", "GET explain?id=" + tl.refused[0],
		"GET verify", "GET audience?accounts=200", "POST replay"} {
		method, path, _ := strings.Cut(p, " ")
		for _, tok := range []string{"", "Bearer not-the-token"} {
			req, _ := http.NewRequest(method, g.admin+"/v1/ledger/"+path, strings.NewReader(tighter))
			if tok != "" {
				req.Header.Set("Authorization", tok)
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusUnauthorized {
				t.Errorf("admin %s with %q: %d, want 401", p, tok, r.StatusCode)
			}
		}
	}
}
