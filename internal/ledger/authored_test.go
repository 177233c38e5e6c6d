package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// Every sealed hour gets an author index; reach over windows whose ends
// cut hours (one end, both, both in one hour) gives, by every facet, what
// the hours' columns alone give and what the Entries say.
func TestAuthoredEqualsColumns(t *testing.T) {
	dir := t.TempDir()
	all := writeDays(t, dir, 30, Options{})
	ls, err := list(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed := 0
	for _, stem := range ls.stems {
		if ls.seg[stem] {
			sealed++
			if !ls.aut[stem] {
				t.Fatalf("sealed hour %s has no author index", stem)
			}
		}
	}
	if sealed != 30 || len(ls.aut) != 30 {
		t.Fatalf("%d sealed hours, %d author indexes", sealed, len(ls.aut))
	}
	authors := []string{"a0", "a1", "a3", "a7", "a7", "a12", "a24", "nobody"}
	h := func(hours int, d time.Duration) time.Time { return day0.Add(time.Duration(hours)*time.Hour + d) }
	for _, c := range []struct {
		name string
		w    Window
		cut  int // hours the window cuts
	}{
		// Each hour's Accesses are in its first 30 minutes.
		{"both ends", Window{From: h(2, 17*time.Minute+3*time.Second), To: h(27, 11*time.Minute+500*time.Microsecond)}, 2},
		{"from only", Window{From: h(22, 14*time.Minute+59*time.Second)}, 1},
		{"to only", Window{To: h(5, 10*time.Minute)}, 1},
		{"inside one hour", Window{From: h(9, 4*time.Minute), To: h(9, 21*time.Minute)}, 1},
	} {
		for _, by := range []identify.Facet{identify.FacetAccount, identify.FacetIP, identify.FacetNet} {
			t.Run(c.name+"/"+by.String(), func(t *testing.T) {
				r := reader(t, dir, c.w)
				defer r.Close()
				got, impr := viewerSets(t, r, authors, by)
				used := 0
				for _, x := range r.auts {
					if x != nil {
						used++
					}
				}
				if used != c.cut {
					t.Fatalf("%d author indexes used, want %d", used, c.cut)
				}
				for p := range r.auts {
					r.auts[p] = nil // the columns alone
				}
				cols, cimpr := viewerSets(t, r, authors, by)
				sets, wimpr := viewersOf(all, c.w, authors, by)
				sameViewers(t, authors, "with author indexes", got, impr, "columns", cols, cimpr)
				sameViewers(t, authors, "with author indexes", got, impr, "the Entries say", sets, wimpr)
				reached := 0
				for i := range authors {
					reached += len(sets[i])
				}
				if reached < 5 {
					t.Fatalf("the authors reached %d: the test asserts little", reached)
				}
			})
		}
	}
	rep, err := Verify(dir)
	if err != nil || !rep.OK || len(rep.AuthorIndexes) != 30 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Verify checks each author index's hash, the hour it names and its
// postings against what the hour makes, and reports one whose hour is
// gone; a reader never panics on an edited one, and answers from the
// columns when it does not parse.
func TestVerifyCatchesAuthoredEdits(t *testing.T) {
	dir := t.TempDir()
	all := writeDays(t, dir, 3, Options{})
	stem := partName(day0.Add(time.Hour).Unix())
	path := autPath(dir, stem)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An index no reader uses is not a problem of the ledger: a derived
	// file the writer rebuilds.
	rebuild := func(what string) string {
		t.Helper()
		rep, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || len(rep.Problems) != 0 || len(rep.Rebuild) != 1 || !strings.Contains(rep.Rebuild[0], path) {
			t.Fatalf("%s: problems %v, to rebuild %v", what, rep.Problems, rep.Rebuild)
		}
		return rep.Rebuild[0]
	}
	w := Window{From: day0.Add(time.Hour + 20*time.Minute)}
	authors := []string{"a1", "a2", "a5"}
	sets, wimpr := viewersOf(all, w, authors, identify.FacetAccount)

	orig0, err := parseAuthored(orig)
	if err != nil {
		t.Fatal(err)
	}
	b := slices.Clone(orig)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o600)
	if p := rebuild("edited byte"); !strings.Contains(p, "SHA-256") {
		t.Fatalf("edited byte: %s", p)
	}
	// The reader checks an index's hash: edited anywhere, the answer is
	// the columns', never a panic.
	for _, at := range []int{0, 9, 12, 45, 50, len(b) / 3, len(b) / 2, len(b) - 40} {
		e := slices.Clone(orig)
		e[at] ^= 0xff
		os.WriteFile(path, e, 0o600)
		r := reader(t, dir, w)
		got, impr := viewerSets(t, r, authors, identify.FacetAccount)
		if !sameViewers(t, authors, fmt.Sprintf("byte %d edited:", at), got, impr, "the Entries say", sets, wimpr) {
			t.FailNow()
		}
		if r.Fallbacks() != 1 {
			t.Fatalf("byte %d edited: %d fallbacks, want the index's", at, r.Fallbacks())
		}
		r.Close()
	}

	// Rehashed with a posting moved to another Access: its postings are
	// not what the hour makes.
	x := orig0
	dec := mustDecoder(t)
	raws, err := x.k.rawBlocks(dec)
	if err != nil {
		t.Fatal(err)
	}
	kb := &keyedBuilder{}
	moved := false
	for bi, raw := range raws {
		bl, err := parseBlock(raw, x.k.first[bi], int(x.k.nkeys[bi]))
		if err != nil {
			t.Fatal(err)
		}
		for j, key := range bl.keys {
			nums, err := accessNumbers(bl.raw[bl.off[j]:bl.end[j]], x.n, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !moved && nums[len(nums)-1]+1 < uint32(x.n) {
				nums[len(nums)-1]++
				moved = true
			}
			payload := binary.AppendUvarint(nil, uint64(len(nums)))
			var prev uint32
			for _, v := range nums {
				payload = binary.AppendUvarint(payload, uint64(v-prev))
				prev = v
			}
			kb.add(key, payload)
		}
	}
	forged := kb.appendTo(slices.Clone(orig[:x.head]), mustEncoder(t))
	os.WriteFile(path, withHash(forged), 0o600)
	if p := verifyProblem(t, dir, path, "forged postings"); !strings.Contains(p, "differs") {
		t.Fatalf("forged postings: %s", p)
	}

	// Made for another hour's hash.
	other := slices.Clone(orig[:len(orig)-32])
	other[len(autMagic)+len(binary.AppendVarint(nil, x.hour))+3] ^= 1 // in the hour's SHA-256
	os.WriteFile(path, withHash(other), 0o600)
	if p := rebuild("another hash"); !strings.Contains(p, "by hash") {
		t.Fatalf("another hash: %s", p)
	}
	r := reader(t, dir, w)
	must2(r.Viewers(authors, identify.FacetAccount))(t)
	for p, x := range r.auts {
		if x != nil && partName(p.hour) == stem {
			t.Fatalf("a reader used an author index that names another hash")
		}
	}
	r.Close()

	// Its hour gone.
	os.WriteFile(path, orig, 0o600)
	seg, _ := os.ReadFile(segPath(dir, stem))
	os.Rename(segPath(dir, stem), segPath(dir, stem)+".aside")
	rep, err := Verify(dir)
	if err != nil || rep.OK || !slices.ContainsFunc(rep.Problems, func(p string) bool {
		return strings.HasPrefix(p, path) && strings.Contains(p, "not sealed")
	}) {
		t.Fatalf("hour gone: %+v %v", rep, err)
	}
	os.WriteFile(segPath(dir, stem), seg, 0o600)
	os.Remove(segPath(dir, stem) + ".aside")
	if rep, err := Verify(dir); err != nil || !rep.OK || len(rep.AuthorIndexes) != 3 {
		t.Fatalf("restored: %+v %v", rep, err)
	}
}

// Retention removes an hour's author index with the hour.
func TestAuthoredRetention(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 6, Options{})
	openAt(t, dir, &clock{t: day0.Add(7 * time.Hour)}, Options{MaxAge: 4 * time.Hour}).Close()
	ls, _ := list(dir)
	for _, stem := range []string{partName(day0.Unix()), partName(day0.Add(time.Hour).Unix())} {
		if ls.seg[stem] || ls.aut[stem] {
			t.Fatalf("%s: sealed %v, author index %v after retention", stem, ls.seg[stem], ls.aut[stem])
		}
	}
	if last := partName(day0.Add(5 * time.Hour).Unix()); !ls.seg[last] || !ls.aut[last] {
		t.Fatalf("hour %s or its index removed", last)
	}
	if rep, err := Verify(dir); err != nil || !rep.OK || len(rep.AuthorIndexes) != len(ls.aut) {
		t.Fatalf("verify after retention: %+v %v", rep, err)
	}
}

// withHash appends b's SHA-256, as the sealer ends its files.
func withHash(b []byte) []byte {
	s := sha256.Sum256(b)
	return append(b, s[:]...)
}

// An hour of several chunks, its Accesses a little out of time order and
// some naming an author twice: windows that leave chunks whole in or out
// and cut others give what the columns and the Entries say.
func TestAuthoredChunks(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	c := &clock{t: day0}
	l := openAt(t, dir, c, Options{})
	var all []*Entry
	for i := range 3*autChunk + 300 {
		at := day0.Add(time.Duration(i)*time.Second + time.Duration(rng.IntN(5000))*time.Millisecond)
		c.set(day0)
		var authors []string
		for range rng.IntN(3) {
			authors = append(authors, fmt.Sprintf("a%d", rng.IntN(40)))
		}
		if i%97 == 0 && len(authors) > 0 {
			authors = append(authors, authors[0])
		}
		e := posts(at, fmt.Sprintf("acct%d", rng.IntN(300)), fmt.Sprintf("10.0.%d.1", rng.IntN(50)), authors...)
		l.Add(e)
		all = append(all, e)
	}
	l.Close()
	openAt(t, dir, &clock{t: day0.Add(2 * time.Hour)}, Options{}).Close()
	x, err := parseAuthored(mustRead(t, autPath(dir, partName(day0.Unix()))))
	if err != nil || len(x.chunks) != 4 || x.n != uint64(len(all)) {
		t.Fatalf("index: %v chunks, %d Accesses, %v", x, len(all), err)
	}
	authors := []string{"a0", "a3", "a9", "a17", "a39"}
	s := func(d time.Duration) time.Time { return day0.Add(d) }
	for _, w := range []Window{
		{From: s(17*time.Minute + 3*time.Second + 17*time.Microsecond)},
		{From: s(35 * time.Minute)},
		{To: s(5*time.Minute + 11*time.Second)},
		{To: s(52*time.Minute + 999*time.Millisecond)},
		{From: s(16*time.Minute + 40*time.Second), To: s(51 * time.Minute)},
		{From: s(20 * time.Minute), To: s(20*time.Minute + 30*time.Second)},
	} {
		for _, by := range []identify.Facet{identify.FacetAccount, identify.FacetIP} {
			r := reader(t, dir, w)
			got, impr := viewerSets(t, r, authors, by)
			if r.auts[r.parts[0]] == nil {
				t.Fatalf("%v: the hour's author index unused", w)
			}
			r.auts[r.parts[0]] = nil
			cols, cimpr := viewerSets(t, r, authors, by)
			sets, wimpr := viewersOf(all, w, authors, by)
			on := fmt.Sprintf("%v by %s:", w, by)
			sameViewers(t, authors, on+" index", got, impr, "the Entries", sets, wimpr)
			sameViewers(t, authors, on+" columns", cols, cimpr, "the Entries", sets, wimpr)
			r.Close()
		}
	}
	if rep, err := Verify(dir); err != nil || !rep.OK || len(rep.AuthorIndexes) != 1 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// skipUvarints passes what a byte at a time passes.
func TestSkipUvarints(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var b []byte
	var ends []int // where each varint ends
	for range 5000 {
		b = binary.AppendUvarint(b, rng.Uint64()>>rng.IntN(64))
		ends = append(ends, len(b))
	}
	for range 2000 {
		from := rng.IntN(len(ends))
		k := rng.IntN(len(ends) - from + 1)
		start := 0
		if from > 0 {
			start = ends[from-1]
		}
		rest, err := skipUvarints(b[start:], k)
		want := start
		if k > 0 {
			want = ends[from+k-1]
		}
		if err != nil || len(b)-len(rest) != want {
			t.Fatalf("skip %d from varint %d: at byte %d, want %d (%v)", k, from, len(b)-len(rest), want, err)
		}
	}
	if _, err := skipUvarints([]byte{0x80, 0x80}, 1); err == nil {
		t.Fatal("a varint cut short: no error")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
