package ledger

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// strtab numbers names in the order added, finds each again through its
// growth, and tells a name it does not hold.
func TestStrtab(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"empty", 0},
		{"one", 1},
		{"past several doublings", 100000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st strtab
			for i := range tc.n {
				v, added := st.intern(fmt.Sprint("id-", i))
				if !added || v != uint32(i) {
					t.Fatalf("intern #%d: %d, added %v", i, v, added)
				}
			}
			if st.len() != tc.n {
				t.Fatalf("len %d, want %d", st.len(), tc.n)
			}
			for i := range tc.n {
				s := fmt.Sprint("id-", i)
				if v, ok := st.find(s); !ok || v != uint32(i) {
					t.Fatalf("find %s: %d %v", s, v, ok)
				}
				if v, added := st.intern(s); added || v != uint32(i) {
					t.Fatalf("intern again %s: %d, added %v", s, v, added)
				}
				if got := st.str(uint32(i)); got != s {
					t.Fatalf("str(%d) = %q", i, got)
				}
			}
			for _, s := range []string{"", "id-", fmt.Sprint("id-", tc.n), "id-00"} {
				if v, ok := st.find(s); ok {
					t.Fatalf("find %q: %d, want absent", s, v)
				}
			}
			if st.str(uint32(tc.n)) != "" {
				t.Fatal("str past the end is not empty")
			}
			st.reset()
			if _, ok := st.find("id-0"); ok || st.len() != 0 {
				t.Fatal("reset kept names")
			}
			if v, added := st.intern("x"); !added || v != 0 {
				t.Fatalf("after reset: %d %v", v, added)
			}
		})
	}
}

// A table loaded in order without look-ups (a dictionary read from disk)
// builds its look-up on first use; the empty name is a name like others.
func TestStrtabLoaded(t *testing.T) {
	var st strtab
	names := []string{"a", "", "bb", "a-long-name-that-spans-more-than-one-word"}
	for _, s := range names {
		st.add([]byte(s))
	}
	for i, s := range names {
		if v, ok := st.find(s); !ok || v != uint32(i) {
			t.Fatalf("find %q: %d %v", s, v, ok)
		}
	}
	if v := st.add([]byte("c")); v != 4 {
		t.Fatalf("add after index: %d", v)
	}
	if v, ok := st.find("c"); !ok || v != 4 {
		t.Fatalf("find c after add: %d %v", v, ok)
	}
}

// The shared dictionary written by intern reads back the same, and a torn
// tail is where its valid part ends.
func TestDictionaryFile(t *testing.T) {
	dir := t.TempDir()
	d := &dictionary{}
	var frames []byte
	for i := range 1000 {
		if v := d.intern(nsID, []byte(fmt.Sprint("u", i)), &frames); v != uint32(i) {
			t.Fatalf("intern %d: %d", i, v)
		}
	}
	d.intern(nsName, []byte("contact"), &frames)
	d.intern(nsID, []byte("u7"), &frames) // known: no frame
	if err := d.appendIDs(dir, frames); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, idsFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{9, 0, 0, 0, 1}) // a frame cut short
	f.Close()
	got, err := loadDictionary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := got.sizes(); s[nsID] != 1000 || s[nsName] != 1 {
		t.Fatalf("sizes %v", s)
	}
	if got.valid != int64(len(frames)) {
		t.Fatalf("valid %d, want %d", got.valid, len(frames))
	}
	if v, ok := got.id(nsID, "u999"); !ok || v != 999 {
		t.Fatalf("u999: %d %v", v, ok)
	}
	if got.t[nsName].str(0) != "contact" {
		t.Fatal("names namespace")
	}
}

// sameIntern interns s in a full table and in another and fails unless
// both give the same integer and say the same about its being new.
func sameIntern(t *testing.T, full, other *strtab, s string) {
	t.Helper()
	a, addedA := full.intern(s)
	b, addedB := other.intern(s)
	if a != b || addedA != addedB {
		t.Fatalf("%.20q: full %d %v, other (lookupOnly %v, dense %v) %d %v", s, a, addedA, other.lookupOnly, other.dense, b, addedB)
	}
}

// A lookupOnly table (the sealer's) gives the same integers as a full
// one, through growth (its rehash walks the names, having no starts), and
// keeps no integer -> name index.
func TestLookupOnlyStrtab(t *testing.T) {
	full, lean := strtab{}, strtab{lookupOnly: true}
	for i := range 50000 {
		sameIntern(t, &full, &lean, fmt.Sprint("name-", i%37000, "-", i%3))
	}
	if full.len() != lean.len() || lean.starts != nil {
		t.Fatalf("len %d and %d, starts %d", full.len(), lean.len(), len(lean.starts))
	}
	for _, s := range []string{"name-5-2", "name-36999-0", "absent"} {
		a, okA := full.find(s)
		b, okB := lean.find(s)
		if a != b || okA != okB {
			t.Fatalf("find %q: %d %v and %d %v", s, a, okA, b, okB)
		}
	}
}

// A dense table (the shared dictionary's) gives the same integers as a
// doubled one through growth, keeps its slots between 5/8 and 3/4 full and
// its data within an eighth (and 4 KiB) of its names; a loaded one holds
// its names exactly.
func TestDenseStrtab(t *testing.T) {
	full, dense := strtab{}, strtab{lookupOnly: true, dense: true}
	for i := range 200000 {
		sameIntern(t, &full, &dense, fmt.Sprint("name-", i%150000, "-", i%3))
		if n := dense.len(); n > 100 && (n*8 < len(dense.slots)*5-8 || n*4 >= len(dense.slots)*3) {
			t.Fatalf("%d names in %d slots", n, len(dense.slots))
		}
	}
	if c, l := cap(dense.data), len(dense.data); c > l+max(l/8, 4096)+64 {
		t.Fatalf("data %d bytes in %d", l, c)
	}
	for _, s := range []string{"name-5-2", "name-149999-0", "absent"} {
		a, okA := full.find(s)
		b, okB := dense.find(s)
		if a != b || okA != okB {
			t.Fatalf("find %q: %d %v and %d %v", s, a, okA, b, okB)
		}
	}
	dir := t.TempDir()
	var frames []byte
	for i := range 3000 {
		frames = appendDictFrame(frames, nsID, []byte(fmt.Sprint("u", i*i)))
	}
	if err := os.WriteFile(filepath.Join(dir, idsFile), frames, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, load := range []func(string) (*dictionary, error){loadDictionary, loadSealerDictionary} {
		d, err := load(dir)
		if err != nil {
			t.Fatal(err)
		}
		tb := &d.t[nsID]
		if !tb.dense || cap(tb.data) != len(tb.data) {
			t.Fatalf("dense %v, data %d bytes in %d", tb.dense, len(tb.data), cap(tb.data))
		}
		if v, ok := d.id(nsID, "u4000000"); !ok || v != 2000 {
			t.Fatalf("u4000000: %d %v", v, ok)
		}
		if n := len(tb.slots); n != 3000*8/5+1 {
			t.Fatalf("3000 names in %d slots", n)
		}
	}
}

// A lookupOnly table keeps each name's integer in its slot, in fields
// sized to what it holds: names whose bytes outgrow those fields between
// two growths of the table (long names after short ones) widen them, and
// every integer stays the one a full table gives.
func TestLookupOnlyWiden(t *testing.T) {
	full, lean := strtab{}, strtab{lookupOnly: true, dense: true}
	check := func(s string) { t.Helper(); sameIntern(t, &full, &lean, s) }
	for i := range 5000 {
		check(fmt.Sprint("s", i))
	}
	off0 := lean.offBits
	long := strings.Repeat("x", 5000)
	for i := range 3000 {
		check(fmt.Sprint(long, i))
		check(fmt.Sprint("s", i*7%5000)) // known: found through the widened fields
	}
	if lean.offBits < off0+7 {
		t.Fatalf("offset field %d bits, was %d: not widened for %d bytes", lean.offBits, off0, len(lean.data))
	}
	for i := range 8000 {
		check(fmt.Sprint("s", i))
	}
	if len(lean.data) >= len(full.data) || lean.len() != 11000 {
		t.Fatalf("lookupOnly data %d bytes, full %d; %d names", len(lean.data), len(full.data), lean.len())
	}
}

// internMany (the sealer's pipeline: names hashed and prefetched ahead of
// their look-ups) gives the integers and frames interning one name at a
// time gives: names already held, new ones, a name repeated within the
// batch (tuples repeat), in a table that starts empty, grows through
// prefetchSlots while the batch runs (rehash places its names ahead too)
// and is dense and lookupOnly as the sealer's is; and every name is found
// again after.
func TestInternManyAsIntern(t *testing.T) {
	tests := []struct {
		name          string
		held, n, mod  int // names held before; the batch: n names, i%mod
		dense, lookup bool
	}{
		{"empty batch", 10, 0, 1, true, true},
		{"shorter than the pipeline", 0, 5, 5, true, true},
		{"new names growing a sealer's table", 1000, 200000, 150000, true, true},
		{"held and repeated, doubling table", 50000, 120000, 70000, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var one, many dictionary
			for _, d := range []*dictionary{&one, &many} {
				d.t[nsID].dense, d.t[nsID].lookupOnly = tc.dense, tc.lookup
				var fr []byte
				for i := range tc.held {
					d.intern(nsID, []byte(fmt.Sprint("held-", i)), &fr)
				}
			}
			name := func(i int) string {
				if i%3 == 0 {
					return fmt.Sprint("held-", i%tc.mod)
				}
				return fmt.Sprint("new-", i%tc.mod)
			}
			var wantFr, gotFr []byte
			want := make([]uint32, tc.n)
			for i := range want {
				want[i] = one.intern(nsID, []byte(name(i)), &wantFr)
			}
			got := make([]uint32, tc.n)
			many.internMany(nsID, tc.n, func(i int, dst []byte) []byte { return append(dst, name(i)...) }, got, &gotFr)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("name %d (%s): %d, one at a time %d", i, name(i), got[i], want[i])
				}
			}
			if string(gotFr) != string(wantFr) {
				t.Fatalf("frames differ: %d bytes, one at a time %d", len(gotFr), len(wantFr))
			}
			if tc.n > 100000 && len(many.t[nsID].slots) < prefetchSlots {
				t.Fatalf("%d slots: the table never grew past prefetchSlots", len(many.t[nsID].slots))
			}
			for i := range tc.n {
				if v, ok := many.id(nsID, name(i)); !ok || v != want[i] {
					t.Fatalf("find %s after: %d %v, want %d", name(i), v, ok, want[i])
				}
			}
		})
	}
}
