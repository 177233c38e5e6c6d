package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// harvest fetches every page of the followers lists of ids with one
// account and returns what it was served, by id, in order of first sight.
func harvest(t *testing.T, cl *http.Client, base, tok string, ids []int) []labUser {
	var out []labUser
	for _, id := range ids {
		cursor := ""
		for range 1000 {
			u := fmt.Sprintf("%s/v1/users/%d/followers?limit=50", base, id)
			if cursor != "" {
				u += "&cursor=" + url.QueryEscape(cursor)
			}
			a := do(t, cl, "GET", u, map[string]string{"Authorization": tok})
			if a.status != 200 {
				t.Fatalf("%s: %d %s", u, a.status, a.body)
			}
			var pg struct {
				Users []labUser
				Next  *string `json:"next_cursor"`
			}
			if err := json.Unmarshal([]byte(a.body), &pg); err != nil {
				t.Fatal(err)
			}
			for _, u := range pg.Users {
				u.Of = fmt.Sprint(id)
				out = append(out, u)
			}
			if pg.Next == nil {
				break
			}
			cursor = *pg.Next
		}
	}
	return out
}

// dedupe keeps each id once.
func dedupe(us []labUser) []labUser {
	seen := map[string]bool{}
	var out []labUser
	for _, u := range us {
		if !seen[u.ID] {
			seen[u.ID] = true
			out = append(out, u)
		}
	}
	return out
}

// writeTake writes records as a harvester would keep them, in format f.
func writeTake(t *testing.T, dir, f string, us []labUser) string {
	var b bytes.Buffer
	switch f {
	case "ndjson":
		for _, u := range us {
			fmt.Fprintf(&b, `{"id":"%s","username":"%s","full_name":"%s"}`+"\n", u.ID, u.Username, u.FullName)
		}
	case "csv-no-header":
		for _, u := range us {
			fmt.Fprintf(&b, "%s,%s,%s\n", u.FullName, u.Username, u.ID)
		}
	case "json-array.gz":
		b.WriteString("[\n")
		for i, u := range us {
			if i > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "  {\n    \"user_id\": %s,\n    \"handle\": \"%s\"\n  }", u.ID, u.Username)
		}
		b.WriteString("\n]\n")
	case "mongo":
		for _, u := range us {
			fmt.Fprintf(&b, `{"_id":{"$oid":"64b000000000000000000000"},"id":{"$numberLong":"%s"},"username":"%s"}`+"\n", u.ID, u.Username)
		}
	case "es-bulk":
		for _, u := range us {
			fmt.Fprintf(&b, `{"index":{"_index":"people","_id":"%s"}}`+"\n"+`{"id":"%s","username":"%s"}`+"\n", u.ID, u.ID, u.Username)
		}
	case "elasticdump":
		for _, u := range us {
			fmt.Fprintf(&b, `{"_index":"people","_id":"%s","_source":{"id":"%s","username":"%s"}}`+"\n", u.ID, u.ID, u.Username)
		}
	case "es-bulk-update": // the id only in the action line
		for _, u := range us {
			fmt.Fprintf(&b, `{"update":{"_index":"people","_id":"%s"}}`+"\n"+`{"doc":{"username":"%s"},"doc_as_upsert":true}`+"\n", u.ID, u.Username)
		}
	case "mongo-csv": // mongoexport --type=csv of a collection keyed by the platform's id
		b.WriteString("_id,username,full_name\n")
		for _, u := range us {
			fmt.Fprintf(&b, "%s,%s,\"%s\"\n", u.ID, u.Username, strings.ReplaceAll(u.FullName, `"`, `""`))
		}
	case "ndjson-padded": // values as a careless export pads them
		for _, u := range us {
			fmt.Fprintf(&b, `{"id":" %s ","username":"  %s\t","full_name":"%s"}`+"\n", u.ID, u.Username, u.FullName)
		}
	case "csv-count-first": // no header, a count before the id
		for _, u := range us {
			fmt.Fprintf(&b, "%d,%s,%s,%s\n", u.FollowerCount, u.FullName, u.Username, u.ID)
		}
	case "csv-multiline", "csv-multiline-no-header": // a quoted bio over three lines, as Python's csv writes it
		if f == "csv-multiline" {
			b.WriteString("id,username,bio,full_name\n")
		}
		for _, u := range us {
			fmt.Fprintf(&b, "%s,%s,\"Plants everywhere.\nFilm, \"\"35mm\"\" mostly.\n\",%s\n", u.ID, u.Username, u.FullName)
		}
	case "mysqldump", "pg_dump.gz", "sqlite":
		writeSQLTake(&b, f, us)
	}
	data := b.Bytes()
	if strings.HasSuffix(f, ".gz") {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(data)
		w.Close()
		data = z.Bytes()
	}
	p := filepath.Join(dir, "take-"+f)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeSQLTake writes a take as the harvester's database dumps it: a users
// table and a follows table (who follows the owner of each list taken),
// as mysqldump (extended INSERTs of 100 rows, no column list), pg_dump
// (COPY blocks) or sqlite3's .dump (an INSERT a row) writes them.
func writeSQLTake(b *bytes.Buffer, f string, us []labUser) {
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
	switch f {
	case "mysqldump":
		q = func(v string) string {
			return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(v) + "'"
		}
		b.WriteString("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n/*!40101 SET NAMES utf8mb4 */;\nDROP TABLE IF EXISTS `users`;\n" +
			"CREATE TABLE `users` (\n  `id` bigint NOT NULL,\n  `username` varchar(64) NOT NULL,\n  `full_name` varchar(255) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n" +
			"LOCK TABLES `users` WRITE;\n")
		for i, u := range us {
			if i%100 == 0 {
				b.WriteString("INSERT INTO `users` VALUES ")
			} else {
				b.WriteString(",")
			}
			fmt.Fprintf(b, "(%s,%s,%s)", u.ID, q(u.Username), q(u.FullName))
			if i%100 == 99 || i == len(us)-1 {
				b.WriteString(";\n")
			}
		}
		b.WriteString("UNLOCK TABLES;\nCREATE TABLE `follows` (\n  `follower_id` bigint NOT NULL,\n  `followee_id` bigint NOT NULL\n) ENGINE=InnoDB;\n")
		for _, u := range us {
			fmt.Fprintf(b, "INSERT INTO `follows` VALUES (%s,%s);\n", u.ID, u.Of)
		}
	case "pg_dump.gz":
		b.WriteString("--\n-- PostgreSQL database dump\n--\n\nSET standard_conforming_strings = on;\n\nCREATE TABLE public.users (\n    id bigint NOT NULL,\n" +
			"    username text NOT NULL,\n    full_name text\n);\n\nCREATE TABLE public.follows (\n    follower_id bigint,\n    followee_id bigint\n);\n\n" +
			"COPY public.users (id, username, full_name) FROM stdin;\n")
		for _, u := range us {
			fmt.Fprintf(b, "%s\t%s\t%s\n", u.ID, u.Username, strings.ReplaceAll(u.FullName, `\`, `\\`))
		}
		b.WriteString("\\.\n\n\nCOPY public.follows (follower_id, followee_id) FROM stdin;\n")
		for _, u := range us {
			fmt.Fprintf(b, "%s\t%s\n", u.ID, u.Of)
		}
		b.WriteString("\\.\n\n")
	case "sqlite":
		b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT, full_name TEXT);\n")
		for _, u := range us {
			fmt.Fprintf(b, "INSERT INTO \"users\" VALUES(%s,%s,%s);\n", u.ID, q(u.Username), q(u.FullName))
		}
		b.WriteString("CREATE TABLE follows(follower_id INTEGER, followee_id INTEGER);\n")
		for _, u := range us {
			fmt.Fprintf(b, "INSERT INTO follows VALUES(%s,%s);\n", u.ID, u.Of)
		}
		b.WriteString("COMMIT;\n")
	}
}

// traceLab starts a platform of 3,000 profiles and a gateway with
// canaries and the ledger on in front of it: the platform's address, a
// directory, the ledger's, the gateway and a client.
func traceLab(t *testing.T) (up, dir, ledgerDir string, g *gw, cl *http.Client) {
	up = startPlatform(t, 3000)
	dir = t.TempDir()
	ledgerDir = filepath.Join(dir, "ledger")
	return up, dir, ledgerDir, startGateway(t, canaryConfig(ledgerDir), up), clientFrom("127.0.0.1")
}

// lists is the ids lo..hi, whose lists a harvester reads.
func lists(lo, hi int) []int {
	var s []int
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

type traceReport struct {
	Records       int64 `json:"records"`
	CanariesFound int   `json:"canaries_found"`
	Forged        int   `json:"canary_shaped_rejected"`
	// Contact-only records, the canaries found by their e-mail or phone,
	// and their canary-shaped values no served canary has.
	ContactOnly      int64 `json:"contact_only"`
	ContactCanaries  int   `json:"contact_canaries"`
	ContactUnmatched int   `json:"contact_unmatched"`
	Accused          []struct {
		Facet, Value string
		Canaries     int
		Score        float64
		Coverage     float64
	} `json:"accused"`
	Coverage []struct {
		Facet, Value string
		Share        float64
	} `json:"coverage"`
	Named []struct {
		Facet, Value string
		Subjects     int
		Accused      bool
	} `json:"named"`
	NamedMin int `json:"named_min"`
}

func runTraceCmd(t *testing.T, ledgerDir string, paths ...string) traceReport {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"trace", "--ledger", ledgerDir, "--json"}, paths...)...)
	cmd.Env = append(os.Environ(), "WARDEN_CANARY_KEY="+canaryKey)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trace %v: %v\n%s", paths, err, out)
	}
	var r traceReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("trace output: %v\n%s", err, out)
	}
	return r
}

func accusedSet(r traceReport) []string {
	var s []string
	for _, a := range r.Accused {
		s = append(s, a.Facet+":"+a.Value)
	}
	sort.Strings(s)
	return s
}

// TestTrace: harvesters through the real gateway with canaries and the
// ledger on; their takes, written in every format, name them and nobody
// else; two takes merged name both; a fleet keeping only what all its
// accounts got is named; a copy of random profiles and forged canaries
// accuse nobody.
func TestTrace(t *testing.T) {
	_, dir, ledgerDir, g, cl := traceLab(t)
	h1 := dedupe(harvest(t, cl, g.url, accountToken(t, 101), lists(1, 700)))
	h2 := dedupe(harvest(t, cl, g.url, accountToken(t, 102), lists(701, 1400)))
	var fleet [][]labUser
	for k, acct := range []int{201, 202, 203} {
		_ = k
		fleet = append(fleet, harvest(t, cl, g.url, accountToken(t, acct), lists(1401, 2200)))
	}
	// Innocents: real users reading a few lists each, some the harvesters' too.
	for i := range 30 {
		harvest(t, cl, g.url, accountToken(t, 300+i), []int{1 + i*37, 750 + i*13, 1500 + i*11})
	}
	g.p.Stop() // the ledger is written and closed
	// The fleet keeps the records all three accounts got.
	count := map[string]int{}
	for _, f := range fleet {
		for _, u := range dedupe(f) {
			count[u.ID]++
		}
	}
	var common []labUser
	for _, u := range dedupe(fleet[0]) {
		if count[u.ID] == len(fleet) {
			common = append(common, u)
		}
	}
	innocent := func(r traceReport) {
		for _, a := range r.Accused {
			if a.Value != "101" && a.Value != "102" && a.Value != "201" && a.Value != "202" && a.Value != "203" {
				t.Fatalf("innocent %s:%s accused: %+v", a.Facet, a.Value, r.Accused)
			}
		}
	}
	var csv traceReport
	for _, f := range []string{"ndjson", "csv-no-header", "json-array.gz", "mongo", "es-bulk", "elasticdump", "es-bulk-update", "mongo-csv", "mysqldump", "pg_dump.gz", "sqlite",
		"ndjson-padded", "csv-count-first", "csv-multiline", "csv-multiline-no-header"} {
		r := runTraceCmd(t, ledgerDir, writeTake(t, dir, f, h1))
		innocent(r)
		if got := accusedSet(r); fmt.Sprint(got) != "[account:101]" {
			t.Errorf("%s: accused %v, want account 101 (records %d, canaries %d)", f, got, r.Records, r.CanariesFound)
		}
		t.Logf("%s: %d records, %d canaries, accused %v, named %v", f, r.Records, r.CanariesFound, accusedSet(r), r.Named)
		switch f {
		case "csv-no-header":
			csv = r
		case "es-bulk-update", "mongo-csv", "mysqldump", "pg_dump.gz", "sqlite",
			"ndjson-padded", "csv-count-first", "csv-multiline", "csv-multiline-no-header":
			// The harvester's database names whom its CSV names: the same
			// canaries, the same identities accused and named, with the
			// same counts; a SQL dump's follows table adds records, no
			// subject.
			records := csv.Records
			if f == "mysqldump" || f == "pg_dump.gz" || f == "sqlite" {
				records *= 2
			}
			if r.CanariesFound != csv.CanariesFound || fmt.Sprint(accusedSet(r)) != fmt.Sprint(accusedSet(csv)) ||
				fmt.Sprint(r.Named) != fmt.Sprint(csv.Named) || r.Records != records {
				t.Errorf("%s: %d records, %d canaries, accused %v, named %+v; the CSV: %d records, %d canaries, accused %v, named %+v", f,
					r.Records, r.CanariesFound, accusedSet(r), r.Named, csv.Records, csv.CanariesFound, accusedSet(csv), csv.Named)
			}
		}
	}
	// --served lists what account 101 was shown: every canary of its take.
	cmd := exec.Command(binPath, "trace", "--ledger", ledgerDir, "--json", "--served", "account", "101")
	cmd.Env = append(os.Environ(), "WARDEN_CANARY_KEY="+canaryKey)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trace --served: %v %s", err, out)
	}
	var sv struct{ Canaries []struct{ ID string } }
	if err := json.Unmarshal(out, &sv); err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, c := range sv.Canaries {
		shown[c.ID] = true
	}
	for _, u := range h1 {
		if len(u.ID) == 10 && !shown[u.ID] { // canary ids have 10 digits, the lab's at most 8
			t.Fatalf("canary %s in 101's take is not among the %d --served lists", u.ID, len(shown))
		}
	}
	merged := runTraceCmd(t, ledgerDir, writeTake(t, dir, "ndjson", append(append([]labUser{}, h1...), h2...)))
	innocent(merged)
	if got := accusedSet(merged); fmt.Sprint(got) != "[account:101 account:102]" {
		t.Errorf("merged takes: accused %v", got)
	}
	// Both takers are named by the ledger with at least their take's
	// distinct profiles of the copy (each took far more than 200).
	for acct, take := range map[string][]labUser{"101": h1, "102": h2} {
		real := 0
		for _, u := range take {
			if len(u.ID) < 10 {
				real++
			}
		}
		named := false
		for _, n := range merged.Named {
			if n.Facet == "account" && n.Value == acct {
				named = n.Subjects >= real
			}
		}
		if real < merged.NamedMin || !named {
			t.Errorf("account %s (%d real profiles taken) not named with them: %+v", acct, real, merged.Named)
		}
	}
	fr := runTraceCmd(t, ledgerDir, writeTake(t, dir, "elasticdump", common))
	innocent(fr)
	if len(fr.Accused) == 0 {
		t.Errorf("the fleet's common records (%d, %d canaries) named nobody", fr.Records, fr.CanariesFound)
	}
	t.Logf("fleet: %d common records, %d canaries, accused %v", fr.Records, fr.CanariesFound, accusedSet(fr))
	// A copy of random profiles nobody took in bulk: ids from the whole network.
	rng := rand.New(rand.NewPCG(1, 2))
	var random []labUser
	for range 2000 {
		id := 1 + rng.IntN(3000)
		random = append(random, labUser{ID: fmt.Sprint(id), Username: fmt.Sprintf("someone_%d", id)})
	}
	if r := runTraceCmd(t, ledgerDir, writeTake(t, dir, "csv-no-header", random)); len(r.Accused) != 0 {
		t.Errorf("a random copy accused %v", accusedSet(r))
	}
	// Forged canary-shaped records beside the random ones.
	var forged []labUser
	for i := range 500 {
		forged = append(forged, labUser{ID: fmt.Sprint(1_000_000_000 + int64(i)*17_000_003), Username: fmt.Sprintf("lena.morgan_%d", 17_000_000+i), FullName: "Lena Morgan"})
	}
	r := runTraceCmd(t, ledgerDir, writeTake(t, dir, "ndjson", append(random, forged...)))
	if len(r.Accused) != 0 || r.CanariesFound != 0 || r.Forged != len(forged) {
		t.Errorf("forged canaries: accused %v, found %d, rejected %d of %d", accusedSet(r), r.CanariesFound, r.Forged, len(forged))
	}
}

// TestTraceSearch: a harvester that takes the network through search
// answers alone is named from its take (search pages are scored like list
// pages: the ledger records the list each answered, the query sealed under
// the key), and the innocents who searched a few of the same queries are
// not; searches never put a query in the ledger in clear. The harvester
// asks three-letter queries: a canary goes only into a page with room
// below the limit (package canary's "Pages"), and the two-letter ones'
// answers are mostly full pages of 50 (2,700 records of 3,000 profiles
// carried 23 canaries when every page was seeded, 18 with room only at
// density 0.025: not enough to accuse at 1e-6).
func TestTraceSearch(t *testing.T) {
	up := startPlatform(t, 3000)
	dir := t.TempDir()
	ledgerDir := filepath.Join(dir, "ledger")
	g := startGateway(t, searchConfig(ledgerDir), up)
	cl := clientFrom("127.0.0.1")
	var qs []string
	for _, q := range searchQueries() {
		for _, c := range "aeioulnrst" {
			qs = append(qs, q+string(c))
		}
	}
	take, _ := searchAll(t, cl, g.url, accountToken(t, 501), qs)
	for i := range 30 {
		searchAll(t, cl, g.url, accountToken(t, 600+i), []string{qs[i*5%len(qs)], qs[(i*7+3)%len(qs)], "lena"})
	}
	g.p.Stop()
	take = dedupe(take)
	r := runTraceCmd(t, ledgerDir, writeTake(t, dir, "ndjson", take))
	t.Logf("search take: %d records, %d canaries, accused %v", r.Records, r.CanariesFound, accusedSet(r))
	if got := accusedSet(r); fmt.Sprint(got) != "[account:501]" {
		t.Fatalf("accused %v, want account 501 (records %d, canaries %d)", got, r.Records, r.CanariesFound)
	}
	err := filepath.Walk(ledgerDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("lena")) {
			t.Errorf("%s holds a search query in clear", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
