package ledger

import (
	"testing"
	"time"
)

// An Access's age rank is read back as written from the open hour and
// from a sealed one (the flag byte's top bits), capped at 31; one
// written without it (every Access of an older ledger) reads as 0.
func TestAgeRankKept(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	ranks := []uint8{0, 1, 3, 31, 40}
	add := func(h int) {
		at := t0.Add(time.Duration(h) * time.Hour)
		c.set(at)
		for i, k := range ranks {
			e := profile(at.Add(time.Duration(i)*time.Second), "7", "10.0.0.1", "1001", i%2 == 0)
			e.Unreferenced = i%2 == 1 // the flag byte's other bits untouched
			e.AgeRank = k
			l.Add(e)
		}
	}
	add(0)
	add(1) // seals hour 0
	waitSealed(t, dir, partName(t0.Unix()))
	l.Sync()
	r := reader(t, dir, Window{})
	defer r.Close()
	for h := range 2 {
		for i, k := range ranks {
			id := profile(t0.Add(time.Duration(h)*time.Hour+time.Duration(i)*time.Second), "", "", "", false).RequestID
			f := must(r.Find(id))(t)
			if f == nil {
				t.Fatalf("hour %d: %s not found", h, id)
			}
			if want := min(k, 31); f.Entry.AgeRank != want || f.Entry.Unreferenced != (i%2 == 1) {
				t.Errorf("hour %d, rank %d: read %d (unreferenced %v)", h, k, f.Entry.AgeRank, f.Entry.Unreferenced)
			}
		}
	}
	l.Close()
}
