package ledger

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// wantWhoTook is who-took computed from the Accesses themselves.
func wantWhoTook(es []*Entry, subject, class string, f int) map[string]WhoTookRow {
	out := map[string]WhoTookRow{}
	for _, e := range es {
		var served []string
		hit := false
		for _, r := range e.Records {
			if r.ID != subject {
				continue
			}
			for i, c := range e.Classes {
				if r.Classes&^r.Masked&(1<<i) != 0 {
					served = append(served, c)
				}
			}
			if class == "" || slices.Contains(served, class) {
				hit = true
			}
		}
		if !hit {
			continue
		}
		v := e.Identity[f]
		row, ok := out[v]
		if !ok {
			row = WhoTookRow{Value: v, Classes: []string{}, First: e.Time, Last: e.Time}
		}
		row.Count++
		if e.Time.Before(row.First) {
			row.First = e.Time
		}
		if e.Time.After(row.Last) {
			row.Last = e.Time
		}
		for _, c := range served {
			if !slices.Contains(row.Classes, c) {
				row.Classes = append(row.Classes, c)
			}
		}
		slices.Sort(row.Classes)
		out[v] = row
	}
	return out
}

// A sealed partition's who-took rows answer as its Accesses do, for every
// facet: those every Access has, one only some have (net), and those none
// has (app, fingerprint: format 3 keeps no rows for them and answers from
// another facet's).
func TestWhoTookEveryFacet(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	var es []*Entry
	for i := 0; i < 60; i++ {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		e := profile(at, fmt.Sprint(i%4), fmt.Sprintf("10.0.0.%d", i%3), fmt.Sprint(100+i%5), i%4 == 1)
		if i%2 == 0 {
			e.Identity[3] = "" // net only on some Accesses
		}
		if i%7 == 0 {
			e = posts(at, fmt.Sprint(i%4), "10.0.0.9", "100", "101")
			e.Records[0].ID, e.Records[1].ID = "100", "103" // posts whose records are subjects too
			e.Classes, e.Records[0].Classes, e.Records[1].Classes = []string{"profile"}, 1, 1
		}
		es = append(es, e)
		l.Add(e)
	}
	c.set(t0.Add(time.Hour))
	l.Add(profile(t0.Add(time.Hour), "x", "10.0.0.9", "999", false))
	waitSealed(t, dir, partName(t0.Unix()))
	l.Close()
	r := reader(t, dir, Window{From: t0, To: t0.Add(time.Hour - time.Second)})
	defer r.Close()
	if len(r.parts) != 1 || !r.parts[0].sealed || !r.win.covers(r.parts[0]) {
		t.Fatalf("want the sealed hour answered from its index: %d partitions", len(r.parts))
	}
	for _, fc := range identify.Facets {
		for _, subject := range []string{"100", "101", "103", "104", "nobody"} {
			for _, class := range []string{"", "contact", "profile"} {
				name := fmt.Sprintf("%s/%s/%q", fc, subject, class)
				got := r.WhoTook(subject, class, fc)
				want := wantWhoTook(es, subject, class, int(fc)-1)
				if len(got.Rows) != len(want) {
					t.Fatalf("%s: %d rows %+v, want %d %+v", name, len(got.Rows), got.Rows, len(want), want)
				}
				for _, row := range got.Rows {
					w := want[row.Value]
					if row.Count != w.Count || !row.First.Equal(w.First) || !row.Last.Equal(w.Last) || !slices.Equal(row.Classes, w.Classes) {
						t.Fatalf("%s: row %+v, want %+v", name, row, w)
					}
				}
			}
		}
	}
}

// A partition sealed in format 2 is refused by readers and verify with an
// error naming its file and what to do.
func TestFormat2Refused(t *testing.T) {
	dir := t.TempDir()
	sealHours(t, dir, 2, Options{})
	seg := segPath(dir, partName(t0.Unix()))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, segMagicV2)
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenReader(dir, Window{})
	if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("reader: %v", err)
	}
	rep, err := Verify(dir)
	if err != nil || rep.OK || !strings.Contains(strings.Join(rep.Problems, "\n"), "format 2") {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
