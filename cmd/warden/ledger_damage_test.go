package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// The commands over a damaged ledger: an hour whose Accesses do not
// decode is an error naming the file (exit 1), never an answer from the
// other hours; an author index that cannot be used gives the same answer
// from its hour, with a warning naming it on stderr.
func TestCommandsOnDamagedLedger(t *testing.T) {
	dir, hour := damageLedger(t)
	stem := hour.Format("2006-01-02T15")
	seg, aut := filepath.Join(dir, stem+".seg"), filepath.Join(dir, stem+".aut")
	run := func(f func(context.Context, []string, io.Writer, io.Writer) error, args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := f(context.Background(), append([]string{"--ledger", dir, "--json"}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}
	// A window that cuts the hour: reach reads its author index.
	cut := []string{"--authors", "7,9", "--from", hour.Add(3 * time.Minute).Format(time.RFC3339), "--to", hour.Add(40 * time.Minute).Format(time.RFC3339)}
	want, _, err := run(runReach, cut...)
	if err != nil || !strings.Contains(want, `"reach": 37`) {
		t.Fatalf("intact: %v %s", err, want)
	}
	approx := append(slices.Clone(cut), "--approx")
	wantApprox, stderr, err := run(runReach, approx...)
	if err != nil || !strings.Contains(wantApprox, `"reach": 37`) || stderr != "" {
		t.Fatalf("intact, --approx: %v %s, stderr %q", err, wantApprox, stderr)
	}
	good, err := os.ReadFile(aut)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(aut, []byte("WLEDGERA\x00\x00\x00\x00"), 0o600)
	got, stderr, err := run(runReach, cut...)
	if err != nil || got != want || !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, aut) {
		t.Fatalf("unusable author index: %v\n%s\nstderr %q; want %s and a warning naming %s", err, got, stderr, want, aut)
	}
	// --approx reads the directory itself (reach.RunApprox), with the
	// same warning.
	got, stderr, err = run(runReach, approx...)
	if err != nil || got != wantApprox || !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, aut) {
		t.Fatalf("unusable author index, --approx: %v\n%s\nstderr %q; want %s and a warning naming %s", err, got, stderr, wantApprox, aut)
	}
	// One flipped byte (the SHA-256 the reader checks fails): the same.
	b := bytes.Clone(good)
	b[len(b)/2] ^= 0x01
	os.WriteFile(aut, b, 0o600)
	if got, stderr, err = run(runReach, approx...); err != nil || got != wantApprox || !strings.Contains(stderr, aut) {
		t.Fatalf("author index with a flipped byte, --approx: %v\n%s\nstderr %q; want %s and a warning naming %s", err, got, stderr, wantApprox, aut)
	}
	os.WriteFile(aut, good, 0o600)

	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Cut: every query fails naming the file.
	os.WriteFile(seg, orig[:len(orig)*2/3], 0o600)
	for name, f := range map[string]func(context.Context, []string, io.Writer, io.Writer) error{"who-took": runWhoTook, "took-by": runTookBy, "reach": runReach} {
		args := map[string][]string{"who-took": {"p2"}, "took-by": {"account", "3"}, "reach": {"--authors", "7"}}[name]
		if out, _, err := run(f, args...); err == nil || !strings.Contains(err.Error(), seg) {
			t.Errorf("%s on a cut hour: %v, printed %s; want an error naming %s", name, err, out, seg)
		}
	}
	// The Accesses' last byte before the hash flipped: took-by decodes
	// them and fails naming the file.
	b = bytes.Clone(orig)
	b[len(b)-33] ^= 0x20
	os.WriteFile(seg, b, 0o600)
	if out, _, err := run(runTookBy, "account", "3"); err == nil || !strings.Contains(err.Error(), seg) {
		t.Errorf("took-by on a damaged hour: %v, printed %s; want an error naming %s", err, out, seg)
	}
}

// damageLedger writes 400 Accesses in an hour five hours ago and seals it.
func damageLedger(t *testing.T) (string, time.Time) {
	t.Helper()
	dir := t.TempDir()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-5 * time.Hour)
	at := hour
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		e := &ledger.Entry{Time: hour.Add(time.Duration(i) * 5 * time.Second), Route: "GET /v1/feed", Status: 200,
			Authors: []string{"7", fmt.Sprint(8 + i%5)}, Records: []ledger.Record{{ID: fmt.Sprint("p", i%9)}, {ID: "p2"}}}
		e.Identity[identify.FacetAccount-1] = fmt.Sprint(i % 37)
		l.Add(e)
	}
	l.Close()
	at = hour.Add(2 * time.Hour) // a restart later: the hour is sealed
	l, err = ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	return dir, hour
}

// The admin API's queries count each derived file they pass over.
func TestAdminCountsSkippedDerivedFiles(t *testing.T) {
	dir, hour := damageLedger(t)
	aut := filepath.Join(dir, hour.Format("2006-01-02T15")+".aut")
	os.WriteFile(aut, []byte("WLEDGERA\x00\x00\x00\x00"), 0o600)
	reg := prometheus.NewRegistry()
	q := ledgerQueries(nil, dir, ledger.NewCache(1<<20), func() *config.Config { return nil }, slog.New(slog.DiscardHandler), derivedSkipped(reg))
	v := url.Values{"authors": {"7"}, "from": {hour.Add(3 * time.Minute).Format(time.RFC3339)}, "to": {hour.Add(40 * time.Minute).Format(time.RFC3339)}}
	if _, err := q.Query(context.Background(), "reach", v); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "warden_ledger_derived_skipped_total" {
			if n := mf.GetMetric()[0].GetCounter().GetValue(); n != 1 {
				t.Fatalf("%v skipped, want the author index", n)
			}
			return
		}
	}
	t.Fatal("no warden_ledger_derived_skipped_total")
}

// Every command that reads a ledger directory over a day whose rollup
// does not parse: the answer of the intact ledger, and a warning naming
// the rollup on stderr.
func TestCommandsWarnOnDamagedRollup(t *testing.T) {
	dir := t.TempDir()
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	at := day
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 24 * 6 {
		at = day.Add(time.Duration(i) * 10 * time.Minute)
		e := &ledger.Entry{Time: at, Route: "GET /v1/feed", Status: 200, RequestID: fmt.Sprint("r", i),
			Authors: []string{"7", fmt.Sprint(8 + i%5)}, Records: []ledger.Record{{ID: fmt.Sprint("p", i%9)}}}
		e.Identity[identify.FacetAccount-1] = fmt.Sprint(i % 41)
		l.Add(e)
	}
	l.Close()
	at = day.Add(26 * time.Hour) // a start later: the day is sealed and rolled up
	if l, err = ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return at }}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	rollup := filepath.Join(dir, day.Format(time.DateOnly)+".day")
	good, err := os.ReadFile(rollup)
	if err != nil {
		t.Fatalf("no rollup: %v", err)
	}
	copyFile := filepath.Join(t.TempDir(), "copy.csv")
	cfgFile := filepath.Join(t.TempDir(), "new.yaml")
	os.WriteFile(copyFile, []byte("id,email\np1,a@example.com\n"), 0o600)
	os.WriteFile(cfgFile, []byte(fmt.Sprintf("ledger:\n  dir: %q\n", dir)), 0o600)
	win := []string{"--from", day.Format(time.RFC3339), "--to", day.Add(24*time.Hour - time.Second).Format(time.RFC3339)}
	commands := []struct {
		name string
		f    func(context.Context, []string, io.Writer, io.Writer) error
		args []string
	}{
		{"reach", runReach, append([]string{"--ledger", dir, "--json", "--authors", "7,9"}, win...)},
		{"reach --approx", runReach, append([]string{"--ledger", dir, "--json", "--authors", "7,9", "--approx"}, win...)},
		{"trace", runTrace, []string{copyFile, "--ledger", dir, "--json"}},
		{"replay", runReplay, append([]string{"--config", cfgFile, "--json"}, win...)},
	}
	run := func(i int) (string, string) {
		var out, errb bytes.Buffer
		if err := commands[i].f(context.Background(), commands[i].args, &out, &errb); err != nil {
			t.Fatalf("%s: %v\n%s", commands[i].name, err, errb.String())
		}
		return out.String(), errb.String()
	}
	want := make([]string, len(commands))
	for i := range commands {
		var stderr string
		want[i], stderr = run(i)
		if strings.Contains(stderr, "warning: ") {
			t.Fatalf("%s on an intact ledger: %s", commands[i].name, stderr)
		}
	}
	b := bytes.Clone(good)
	b[0] ^= 0x01 // its magic
	os.WriteFile(rollup, b, 0o600)
	for i, c := range commands {
		got, stderr := run(i)
		if got != want[i] || !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, rollup) {
			t.Errorf("%s over a damaged rollup:\n%s\nstderr %q; want %s and a warning naming %s", c.name, got, stderr, want[i], rollup)
		}
	}
}
