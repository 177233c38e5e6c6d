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
