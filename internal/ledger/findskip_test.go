package ledger

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// findAll is explain's old path, the reference: every partition's
// Accesses decoded and scanned, oldest first.
func findAll(r *Reader, id string) (*Found, error) {
	for _, p := range r.parts {
		es, err := r.accesses(p)
		if err != nil {
			return nil, err
		}
		for i := range es {
			if es[i].reqID == id {
				return &Found{Entry: r.entryOf(&es[i]), File: p.path}, nil
			}
		}
	}
	return nil, nil
}

// profileID is the request id manyHours gave the Access at hour h, i.
func profileID(h, i int) string {
	return fmt.Sprintf("%08x%016x", 1, t0.Add(time.Duration(h)*time.Hour+time.Duration(i)*time.Millisecond).UnixNano())
}

// Explain over many sealed hours decodes whole only the hour that holds
// the id (its request id column says so), none for an id the ledger does
// not hold, and answers as scanning every hour does.
func TestFindDecodesOneHour(t *testing.T) {
	dir := t.TempDir()
	const hours, perHour = 24, 300
	manyHours(t, dir, hours, perHour)
	r := reader(t, dir, Window{})
	defer r.Close()
	if r.Partitions() != hours {
		t.Fatalf("%d partitions, want %d", r.Partitions(), hours)
	}
	for _, c := range []struct{ h, i int }{{0, 0}, {5, 17}, {11, 299}, {hours - 1, 150}} {
		id := profileID(c.h, c.i)
		r.decodes = 0
		got := must(r.Find(id))(t)
		if r.decodes != 1 {
			t.Fatalf("explain of an id of hour %d decoded %d hours whole, want 1", c.h, r.decodes)
		}
		if got == nil || got.File != r.parts[c.h].path || got.Entry.RequestID != id {
			t.Fatalf("explain of hour %d's %s: %+v", c.h, id, got)
		}
		if want := must(findAll(r, id))(t); !reflect.DeepEqual(got, want) {
			t.Fatalf("explain of %s:\n%+v\nscanning every hour:\n%+v", id, got, want)
		}
		noneDecoded(t, r, "explain")
	}
	for _, id := range []string{
		profileID(3, perHour),                // warden's form, a counter between two hours' Accesses
		fmt.Sprintf("%08x%016x", 2, 1),       // another process's prefix
		"not-an-id", "", profileID(3, 5)[1:], // not warden's form
	} {
		r.decodes = 0
		if got := must(r.Find(id))(t); got != nil || r.decodes != 0 {
			t.Fatalf("explain of unknown %q: %+v, %d hours decoded whole", id, got, r.decodes)
		}
		if must(findAll(r, id))(t) != nil {
			t.Fatalf("%q is in the ledger", id)
		}
	}
}

// Ids not of warden's form (older gateways', a caller's) are found from
// the request id column too, byte for byte; ids of several processes'
// prefixes, interleaved, by prefix and counter.
func TestFindOtherIDs(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	ids := make([][]string, 6)
	for h := range ids {
		at := t0.Add(time.Duration(h) * time.Hour)
		c.set(at)
		for i := 0; i < 40; i++ {
			e := profile(at.Add(time.Duration(i)*time.Second), fmt.Sprint(i%5), "10.0.0.1", fmt.Sprint(i), false)
			switch i % 4 {
			case 0:
				e.RequestID = fmt.Sprintf("req-%d-%d", h, i)
			case 1:
				e.RequestID = fmt.Sprintf("%08x%016x", 7+i%3, h*1000+i) // three processes
			case 2:
				e.RequestID = fmt.Sprintf("%08X%016X", 0xabc, h*1000+i) // upper case: kept as it is
			}
			ids[h] = append(ids[h], e.RequestID)
			l.Add(e)
		}
	}
	l.Close()
	c.set(t0.Add(time.Duration(len(ids)) * time.Hour))
	l = openAt(t, dir, c, Options{}) // seals the last hour
	l.Close()
	r := reader(t, dir, Window{})
	defer r.Close()
	if r.Partitions() != len(ids) {
		t.Fatalf("%d partitions, want %d", r.Partitions(), len(ids))
	}
	for h := range ids {
		for _, id := range ids[h] {
			r.decodes = 0
			got := must(r.Find(id))(t)
			if got == nil || got.File != r.parts[h].path || r.decodes != 1 {
				t.Fatalf("explain of %q (hour %d): %+v, %d hours decoded whole", id, h, got, r.decodes)
			}
			if want := must(findAll(r, id))(t); !reflect.DeepEqual(got, want) {
				t.Fatalf("explain of %q:\n%+v\nscanning every hour:\n%+v", id, got, want)
			}
		}
	}
	for _, id := range []string{"req-0-1", fmt.Sprintf("%08x%016x", 8, 1002), fmt.Sprintf("%08x%016x", 0xabc, 2)} {
		r.decodes = 0
		if got := must(r.Find(id))(t); got != nil || r.decodes != 0 {
			t.Fatalf("explain of unknown %q: %+v, %d hours decoded whole", id, got, r.decodes)
		}
	}
}

// Format 3 partitions (no request id column) are decoded and scanned:
// explain finds what it found before the rewrite.
func TestFindFormat3(t *testing.T) {
	dir := t.TempDir()
	manyHours(t, dir, 4, 200)
	ids := []string{profileID(0, 3), profileID(2, 199), profileID(3, 0), profileID(1, 200)}
	before := make([]*Found, len(ids))
	r := reader(t, dir, Window{})
	for i, id := range ids {
		before[i] = must(r.Find(id))(t)
	}
	r.Close()
	if before[0] == nil || before[3] != nil {
		t.Fatalf("format 4: %+v", before)
	}
	rewriteV3(t, dir)
	r = reader(t, dir, Window{})
	defer r.Close()
	for i, id := range ids {
		r.decodes = 0
		if got := must(r.Find(id))(t); !reflect.DeepEqual(got, before[i]) {
			t.Fatalf("explain of %s in format 3: %+v, in format 4 %+v", id, got, before[i])
		}
		if r.decodes == 0 {
			t.Fatalf("explain of %s decoded no format 3 hour", id)
		}
	}
}

// A request id column that does not parse is an error, never a skip:
// the hour is decoded whole then (and a corrupt one skipped as before).
func TestHasReqIDCorrupt(t *testing.T) {
	dec := mustDecoder(t)
	for _, b := range [][]byte{nil, {1}, {5, 1, 2, 3}, {2, 9, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if found, err := hasReqID(b, dec, profileID(0, 0)); err == nil {
			t.Fatalf("hasReqID(%v): %v, no error", b, found)
		}
	}
}

// An Access of an hour the window cuts is found only when its own time
// is in the window, as ClickHouse's WHERE finds it: explain --from T
// never answers with a request made before T.
func TestFindKeepsToTheWindow(t *testing.T) {
	dir := t.TempDir()
	manyHours(t, dir, 8, 300)
	id := profileID(5, 17)
	at := t0.Add(5*time.Hour + 17*time.Millisecond)
	for _, c := range []struct {
		name string
		win  Window
		want bool
	}{
		{"whole ledger", Window{}, true},
		{"cut hour, Access inside", Window{From: at, To: at}, true},
		{"from after it", Window{From: at.Add(time.Millisecond)}, false},
		{"to before it", Window{To: at.Add(-time.Millisecond)}, false},
		{"the hour before", Window{From: t0.Add(4 * time.Hour), To: at.Add(-time.Microsecond)}, false},
	} {
		r := reader(t, dir, c.win)
		got := must(r.Find(id))(t)
		r.Close()
		if (got != nil) != c.want {
			t.Errorf("%s: found %+v, want found %v", c.name, got, c.want)
		}
	}
}
