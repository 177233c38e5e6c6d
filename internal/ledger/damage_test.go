package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/warden-gw/warden/internal/identify"
)

// damageQueries are the reader's queries, each giving its answer as text
// (so that a damaged ledger's answer compares with the intact one's).
// cutHour is an hour whose window ends cut (its Accesses or author index
// are read, not its tables).
func damageQueries(cutHour time.Time) map[string]func(r *Reader) (string, error) {
	authors := []string{"a0", "a1", "a3", "a7", "a12", "a24"}
	reach := func(r *Reader) (string, error) {
		views, impr, err := r.Viewers(authors, identify.FacetAccount)
		if err != nil {
			return "", err
		}
		return fmt.Sprint(valueSets(r, views), impr), nil
	}
	return map[string]func(r *Reader) (string, error){
		"who-took": func(r *Reader) (string, error) {
			res, err := r.WhoTook("p0-a3", "", identify.FacetIP)
			return fmt.Sprint(res), err
		},
		"took-by": func(r *Reader) (string, error) {
			res, err := r.TookBy(identify.FacetAccount, "acct5")
			return fmt.Sprint(res), err
		},
		"distinct": func(r *Reader) (string, error) {
			n, err := r.Distinct(identify.FacetAccount, "acct7", "")
			return fmt.Sprint(n), err
		},
		"distinct-many": func(r *Reader) (string, error) {
			n, err := r.DistinctMany([]DistinctQuery{{By: identify.FacetIP, Values: []string{"10.0.3.1", "10.0.9.1"}}})
			return fmt.Sprint(n), err
		},
		"find": func(r *Reader) (string, error) {
			f, err := r.Find("0000000100000000deadbeef")
			return fmt.Sprint(f), err
		},
		"each": func(r *Reader) (string, error) {
			n := 0
			r.Each(func(*Entry) bool { n++; return true })
			return fmt.Sprint(n), r.Err()
		},
		"reach": reach,
		"reach-cut": func(r *Reader) (string, error) {
			// A fresh reader over a window that cuts cutHour: reach reads
			// its author index and columns.
			c, err := OpenReader(r.dir, Window{From: cutHour.Add(7 * time.Minute), To: cutHour.Add(90 * time.Minute)}, WithWarnings(r.warnFn))
			if err != nil {
				return "", err
			}
			defer c.Close()
			a, err := reach(c)
			r.fallbacks += c.Fallbacks()
			return a, err
		},
	}
}

// runDamage asks every query of dir, whole window; answers are the
// answers of those that gave one, failed the errors of the others.
func runDamage(t *testing.T, dir string, qs map[string]func(*Reader) (string, error), warn func(error)) (answers map[string]string, failed map[string]error, fallbacks int) {
	t.Helper()
	r, err := OpenReader(dir, Window{}, WithWarnings(warn))
	if err != nil {
		return nil, map[string]error{"open": err}, 0
	}
	defer r.Close()
	answers, failed = map[string]string{}, map[string]error{}
	for name, q := range qs {
		a, err := q(r)
		if err != nil {
			failed[name] = err
			continue
		}
		answers[name] = a
	}
	return answers, failed, r.Fallbacks()
}

// A byte flipped in each section of a sealed hour, or the hour cut in
// each: every query either gives the intact ledger's answer (it did not
// read the damaged part) or fails with an error naming the hour's file;
// the queries that read the damaged section fail. Never a panic.
func TestDamagedHourIsAnError(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 30, Options{}) // day 0 rolled up, hours 24-29 not
	hour := day0.Add(26 * time.Hour)
	qs := damageQueries(hour)
	want, failed, _ := runDamage(t, dir, qs, nil)
	if len(failed) > 0 {
		t.Fatalf("intact ledger: %v", failed)
	}
	seg := segPath(dir, partName(hour.Unix()))
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	orig = orig[:len(orig):len(orig)]
	p, err := parseSeg(seg, orig)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s []byte) int { return len(orig) - cap(s) } // where s starts in orig
	type section struct {
		name     string
		from, to int
		mustFail []string // the queries that read it
	}
	secs := []section{
		{"viewers", at(p.v4.viewers.data), at(p.v4.viewers.data) + len(p.v4.viewers.data), []string{"reach"}},
		{"takers", at(p.v4.takers.data), at(p.v4.takers.data) + len(p.v4.takers.data), []string{"who-took"}},
		{"accesses", at(p.cold), at(p.cold) + len(p.cold), []string{"each", "took-by"}},
	}
	for _, s := range secs {
		for _, how := range []string{"flip", "cut"} {
			t.Run(s.name+"/"+how, func(t *testing.T) {
				b := slices.Clone(orig)
				mid := (s.from + s.to) / 2
				if how == "flip" {
					b[mid] ^= 0x10
				} else {
					b = b[:mid]
				}
				if err := os.WriteFile(seg, b, 0o600); err != nil {
					t.Fatal(err)
				}
				defer os.WriteFile(seg, orig, 0o600)
				got, failed, _ := runDamage(t, dir, qs, nil)
				if how == "cut" {
					if err := failed["open"]; err == nil || !strings.Contains(err.Error(), seg) {
						t.Fatalf("open: %v, want an error naming %s", err, seg)
					}
					return
				}
				for name, err := range failed {
					if !strings.Contains(err.Error(), seg) {
						t.Errorf("%s: %v, want an error naming %s", name, err, seg)
					}
				}
				for name, a := range got {
					if a != want[name] {
						t.Errorf("%s answered %s, the intact ledger %s: an answer around the damage", name, a, want[name])
					}
				}
				for _, name := range s.mustFail {
					if failed[name] == nil {
						t.Errorf("%s did not fail", name)
					}
				}
			})
		}
	}
}

// A day's rollup or an hour's author index that is damaged (a byte
// flipped, cut, or of an earlier format) is passed over: reach gives the
// exact answer from the hours, and says so (the warning names the file,
// Fallbacks counts it).
func TestDamagedDerivedFileFallsBack(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 30, Options{})
	hour := day0.Add(26 * time.Hour)
	qs := damageQueries(hour)
	want, failed, n := runDamage(t, dir, qs, nil)
	if len(failed) > 0 || n != 0 {
		t.Fatalf("intact ledger: %v, %d fallbacks", failed, n)
	}
	for _, c := range []struct {
		file, query string
	}{
		{rollupPath(dir, day0.Unix()), "reach"},
		{autPath(dir, partName(hour.Unix())), "reach-cut"},
	} {
		orig, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		for _, how := range []string{"flip", "cut", "old format"} {
			t.Run(c.query+"/"+how, func(t *testing.T) {
				b := slices.Clone(orig)
				switch how {
				case "flip":
					b[len(b)*2/3] ^= 0x10
				case "cut":
					b = b[:len(b)/2]
				case "old format": // the header of an index written before 49f2152
					b = append([]byte(autMagic), 0, 0, 0, 0)
				}
				if err := os.WriteFile(c.file, b, 0o600); err != nil {
					t.Fatal(err)
				}
				defer os.WriteFile(c.file, orig, 0o600)
				var warned []error
				got, failed, n := runDamage(t, dir, qs, func(err error) { warned = append(warned, err) })
				if len(failed) > 0 {
					t.Fatalf("failed: %v", failed)
				}
				for name, a := range got {
					if a != want[name] {
						t.Errorf("%s answered %s, the intact ledger %s", name, a, want[name])
					}
				}
				if n == 0 || len(warned) == 0 || !strings.Contains(fmt.Sprint(warned), c.file) {
					t.Fatalf("%d fallbacks, warnings %v: want one naming %s", n, warned, c.file)
				}
			})
		}
	}
}

// Every byte of a sealed hour (format 5) flipped, one at a time: each
// query gives the intact ledger's answer or fails naming the hour's file,
// never another answer, never a panic; a byte of the header or of a
// directory (what the CRC32C covers) fails the reader's open. All of
// those bytes, each zstd frame's header and checksum are flipped, every
// fifth byte of the rest (the test's run stays under a few seconds).
func TestDamageEveryByte(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 27, Options{})
	hour := day0.Add(25 * time.Hour)
	seg := segPath(dir, partName(hour.Unix()))
	orig, _ := os.ReadFile(seg)
	if string(orig[:len(segMagic5)]) != segMagic5 {
		t.Fatalf("sealed as %q", orig[:len(segMagic5)])
	}
	covered, frames := segRegions(t, orig)
	var sha []flip
	for i := len(orig) - 32; i < len(orig); i += 3 { // the SHA-256: no answer reads it
		sha = append(sha, flip{i, 0x41})
	}
	damageAll(t, dir, seg, len(orig), covered, frames, sha, damageQueries(hour), false)
}

// The same over a day's rollup (derived): every query gives the intact
// answer, and a flipped byte of its header or directories is said (a
// warning naming the rollup: its hours answered).
func TestDamageEveryRollupByte(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 27, Options{})
	path := rollupPath(dir, day0.Unix())
	orig, _ := os.ReadFile(path)
	covered, frames := rollupRegions(t, orig)
	damageAll(t, dir, path, len(orig), covered, frames, nil, rollupQueries(), true)
}

// damageAll makes the changes flipPlaces chooses in path (n bytes), and
// extra, through damageEvery: t fails on each bad outcome and on each
// change to a covered byte that no query or warning reported.
func damageAll(t *testing.T, dir, path string, n int, covered, frames [][2]int, extra []flip, qs map[string]func(*Reader) (string, error), derived bool) {
	t.Helper()
	orig, _ := os.ReadFile(path)
	checksummed(t, orig, frames)
	at, inCovered := flipPlaces(n, covered, frames)
	at = append(at, extra...)
	bad, caught := damageEvery(t, dir, path, at, qs, derived)
	for _, b := range bad {
		t.Error(b)
	}
	for _, f := range at {
		if inCovered[f.at] && !caught[f] {
			t.Errorf("byte %d (covered by the CRC32C) flipped: no query failed or warned naming %s", f.at, path)
		}
	}
	t.Logf("%d changes to %d bytes, %d covered by the CRC32C, %d in %d zstd frames", len(at), n, len(inCovered), frameBytes(frames), len(frames))
}

// What the CRC32C closes: the same flips in a format 4 hour (an earlier
// warden's) and a rollup written before it give other answers without an
// error. This is the check TestDamageEveryByte and
// TestDamageEveryRollupByte make, failing on the earlier formats.
func TestDamageFormat4Gap(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 27, Options{})
	hour := day0.Add(25 * time.Hour)
	want, _, _ := runDamage(t, dir, damageQueries(hour), nil)
	rewriteV4(t, dir)
	if got, failed, n := runDamage(t, dir, damageQueries(hour), nil); !maps.Equal(got, want) || len(failed) > 0 || n > 0 {
		t.Fatalf("format 4 answers %v (failed %v, %d fallbacks), format 5 %v", got, failed, n, want)
	}
	seg := segPath(dir, partName(hour.Unix()))
	orig, _ := os.ReadFile(seg)
	covered, _ := segRegions(t, orig)
	at, _ := flipPlaces(len(orig), covered, nil)
	bad, _ := damageEvery(t, dir, seg, at, damageQueries(hour), false)
	if len(bad) == 0 {
		t.Fatalf("no flip of %d in a format 4 hour's header and directories changed an answer", len(at))
	}
	t.Logf("format 4: %d of %d flips in the header and directories changed an answer unseen; the first: %s", len(bad), len(at), bad[0])

	path := rollupPath(dir, day0.Unix())
	b, _ := os.ReadFile(path)
	old := rollupV1(b)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(dir); err != nil || !rep.OK {
		t.Fatalf("verify of a rollup written before the CRC32C: %v %v", err, rep.Problems)
	}
	covered, _ = rollupRegions(t, old)
	at, _ = flipPlaces(len(old), covered, nil)
	bad, _ = damageEvery(t, dir, path, at, rollupQueries(), true)
	if len(bad) == 0 {
		t.Fatalf("no flip of %d in an earlier rollup's header and directories changed an answer", len(at))
	}
	t.Logf("rollup %s: %d of %d flips changed an answer unseen; the first: %s", rollupMagic1, len(bad), len(at), bad[0])
}

// rollupQueries are the queries a day's rollup answers (reach over whole
// days).
func rollupQueries() map[string]func(r *Reader) (string, error) {
	qs := damageQueries(day0)
	return map[string]func(r *Reader) (string, error){"reach": qs["reach"]}
}

// flip is a byte to change and the bits to change in it.
type flip struct {
	at   int
	mask byte
}

// damageEvery makes each change at to path in turn (path restored after)
// and asks qs: bad says each answer that differs from the intact one
// with no error, each error that does not name path and, for a derived
// file, each query that failed or warning that does not name it; caught
// holds the changes after which a query failed naming path, or a warning
// named it.
func damageEvery(t *testing.T, dir, path string, at []flip, qs map[string]func(*Reader) (string, error), derived bool) (bad []string, caught map[flip]bool) {
	t.Helper()
	want, failed, _ := runDamage(t, dir, qs, nil)
	if len(failed) > 0 {
		t.Fatalf("intact ledger: %v", failed)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(path, orig, 0o600)
	caught = map[flip]bool{}
	for _, f := range at {
		i := f.at
		b := slices.Clone(orig)
		b[i] ^= f.mask
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var warned []error
		got, failed, _ := runDamage(t, dir, qs, func(err error) { warned = append(warned, err) })
		for name, err := range failed {
			switch {
			case derived:
				bad = append(bad, fmt.Sprintf("byte %d: %s failed: %v (a derived file's damage is answered from the hours)", i, name, err))
			case !strings.Contains(err.Error(), path):
				bad = append(bad, fmt.Sprintf("byte %d: %s: %v, want an error naming %s", i, name, err, path))
			default:
				caught[f] = true
			}
		}
		for _, w := range warned {
			if derived && !strings.Contains(w.Error(), path) {
				bad = append(bad, fmt.Sprintf("byte %d: warning %v, want one naming %s", i, w, path))
			}
			caught[f] = caught[f] || strings.Contains(w.Error(), path)
		}
		for name, a := range got {
			if a != want[name] {
				bad = append(bad, fmt.Sprintf("byte %d: %s answered %s, the intact ledger %s", i, name, a, want[name]))
			}
		}
	}
	return bad, caught
}

// flipPlaces is what to change in a file of n bytes: every byte covered
// (also returned as a set), each zstd frame's first 8 bytes (its header)
// and last 4 (its checksum), every fifth byte of the rest of each frame;
// two bits of each byte, and each bit alone of a frame's descriptor and
// the byte after it (the flags that say whether a checksum and a content
// size follow).
func flipPlaces(n int, covered, frames [][2]int) ([]flip, map[int]bool) {
	set := map[int]bool{}
	in := map[int]bool{}
	for _, r := range covered {
		for i := r[0]; i < r[1]; i++ {
			set[i], in[i] = true, true
		}
	}
	flags := map[int]bool{}
	for _, r := range frames {
		flags[r[0]+4], flags[r[0]+5] = true, true
		for i := r[0]; i < r[1]; i++ {
			if i < r[0]+8 || i >= r[1]-4 || (i-r[0])%5 == 0 {
				set[i] = true
			}
		}
	}
	var at []flip
	for i := range n {
		if set[i] {
			at = append(at, flip{i, 0x41})
		}
		if flags[i] {
			for bit := range 8 {
				if 1<<bit&0x41 == 0 {
					at = append(at, flip{i, 1 << bit})
				}
			}
		}
	}
	return at, in
}

// checksummed fails t unless each frame of b carries zstd's checksum of
// its content: what covers the compressed bytes (the encoder's default,
// WithEncoderCRC; the decoder checks it).
func checksummed(t *testing.T, b []byte, frames [][2]int) {
	t.Helper()
	for _, r := range frames {
		var h zstd.Header
		if err := h.Decode(b[r[0]:r[1]]); err != nil || !h.HasCheckSum {
			t.Fatalf("the zstd frame at byte %d has no checksum of its content (%v)", r[0], err)
		}
	}
}

func frameBytes(frames [][2]int) int {
	n := 0
	for _, r := range frames {
		n += r[1] - r[0]
	}
	return n
}

// segRegions is where a sealed hour's (format 4 or 5) bytes lie: covered,
// what format 5's CRC32C covers and the CRC32C itself (format 5); frames,
// each zstd frame (blocks and columns).
func segRegions(t *testing.T, b []byte) (covered, frames [][2]int) {
	t.Helper()
	b = b[:len(b):len(b)]
	p, _, err := parseSeg45("", b)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s []byte) int { return len(b) - cap(s) }
	vs := at(p.v4.viewers.data) - p.v4.viewers.dir
	covered = append(covered, [2]int{0, vs})
	for _, k := range []*keyed{p.v4.viewers, p.v4.takers} {
		d := at(k.data)
		covered = append(covered, [2]int{d - k.dir, d})
		for i := range len(k.first) {
			frames = append(frames, [2]int{d + k.off[i], d + k.off[i+1]})
		}
	}
	cd, err := parseColumnDir(p.cold)
	if err != nil {
		t.Fatal(err)
	}
	c := at(p.cold)
	covered = append(covered, [2]int{c, c + cd.size})
	for i, from := 0, c+cd.size; i < numCols; i++ {
		if n := int(cd.comp[i]); n > 0 {
			frames = append(frames, [2]int{from, from + n})
			from += n
		}
	}
	if p.format == 5 {
		covered = append(covered, [2]int{len(b) - 36, len(b) - 32})
	}
	return covered, frames
}

// rollupRegions is segRegions for a day's rollup.
func rollupRegions(t *testing.T, b []byte) (covered, frames [][2]int) {
	t.Helper()
	b = b[:len(b):len(b)]
	x, err := parseRollup("", b)
	if err != nil {
		t.Fatal(err)
	}
	_, n, err := rollupHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	covered = append(covered, [2]int{0, n})
	at := func(s []byte) int { return len(b) - cap(s) }
	end := n
	for _, k := range x.secs {
		d := at(k.data)
		for i := range len(k.first) {
			frames = append(frames, [2]int{d + k.off[i], d + k.off[i+1]})
		}
		end = d + len(k.data) + k.dir
		covered = append(covered, [2]int{d + len(k.data), end})
	}
	covered = append(covered, [2]int{end, len(b) - 32}) // the trailer, the CRC32C
	return covered, frames
}

// askNamesPath asks r who-took, took-by, reach and explain's look-up: each
// answers or fails naming path (the damaged file), never panics.
func askNamesPath(t *testing.T, r *Reader, path string) {
	t.Helper()
	var errs []error
	_, err := r.WhoTook("1001", "", identify.FacetAccount)
	errs = append(errs, err)
	_, err = r.TookBy(identify.FacetAccount, "1")
	errs = append(errs, err)
	_, _, err = r.Viewers([]string{"1", "7"}, identify.FacetAccount)
	errs = append(errs, err)
	_, err = r.Find("x")
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Errorf("%v: want an error naming %s", err, path)
		}
	}
}

// An author index a reader cannot use (here an earlier build's header,
// its SHA-256 intact: "header: bad chunks") is reported by verify as a
// derived file to rebuild, not as damage to the ledger; a writer started
// on the directory rebuilds it, as it builds a missing one.
func TestUnusableAuthorIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 27, Options{})
	hour := day0.Add(25 * time.Hour)
	aut := autPath(dir, partName(hour.Unix()))
	good, err := os.ReadFile(aut)
	if err != nil {
		t.Fatal(err)
	}
	old := binary.AppendVarint([]byte(autMagic), hour.Unix())
	old = append(old, make([]byte, 32)...)
	old = binary.AppendUvarint(old, 30)
	old = binary.AppendUvarint(old, 0) // no Accesses a chunk
	if err := os.WriteFile(aut, appendHash(old), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Problems) != 0 || len(rep.Rebuild) != 1 || !strings.Contains(rep.Rebuild[0], aut) || !strings.Contains(rep.Rebuild[0], "bad chunks") {
		t.Fatalf("verify: ok %v, problems %v, to rebuild %v", rep.OK, rep.Problems, rep.Rebuild)
	}
	// A writer started on the directory (an hour after the last, as
	// writeDays closed it) rebuilds it.
	openAt(t, dir, &clock{t: day0.Add(28 * time.Hour)}, Options{}).Close()
	if err := authoredUsable(dir, partName(hour.Unix())); err != nil {
		t.Fatalf("after a start: %v", err)
	}
	if b, _ := os.ReadFile(aut); !bytes.Equal(b, good) {
		t.Fatalf("rebuilt index differs from the one the sealer made")
	}
	if rep, err := Verify(dir); err != nil || !rep.OK || len(rep.Rebuild) != 0 {
		t.Fatalf("verify after the rebuild: %+v %v", rep, err)
	}
}

// A rollup written before rollups carried a CRC32C is read as it is
// (the same answer, no warning) and written again with one by a writer
// started on the directory.
func TestOldRollupRebuiltAtStart(t *testing.T) {
	dir, path, good := rolledUp(t)
	qs := rollupQueries()
	want, _, _ := runDamage(t, dir, qs, nil)
	if err := os.WriteFile(path, rollupV1(good), 0o600); err != nil {
		t.Fatal(err)
	}
	r := reader(t, dir, Window{})
	if len(r.rollups) != 1 || r.rollups[0].checked {
		t.Fatalf("the earlier rollup not used as it is: %d rollups", len(r.rollups))
	}
	r.Close()
	if got, failed, n := runDamage(t, dir, qs, nil); !maps.Equal(got, want) || len(failed) > 0 || n > 0 {
		t.Fatalf("with the earlier rollup: %v (failed %v, %d fallbacks), want %v", got, failed, n, want)
	}
	if err := rollupUsable(path); !errors.Is(err, errRollupOld) {
		t.Fatalf("rollupUsable: %v", err)
	}
	openAt(t, dir, &clock{t: day0.Add(27 * time.Hour)}, Options{}).Close()
	if b, _ := os.ReadFile(path); !bytes.Equal(b, good) {
		t.Fatalf("the rollup after a start differs from the one the sealer made")
	}
}

// rolledUp is a ledger of 26 hours (day0 rolled up), its rollup's path
// and bytes.
func rolledUp(t *testing.T) (dir, path string, b []byte) {
	t.Helper()
	dir = t.TempDir()
	writeDays(t, dir, 26, Options{})
	path = rollupPath(dir, day0.Unix())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return dir, path, b
}

// rollupV1 is a rollup as written before the CRC32C (rollupMagic1).
func rollupV1(b []byte) []byte {
	return appendHash(append([]byte(rollupMagic1), b[len(rollupMagic):len(b)-36]...))
}

// A damaged day rollup (readers pass it over: its CRC32C or a block's
// checksum fails) is found by its SHA-256 when a writer starts, and
// rebuilt from its hours.
func TestDamagedRollupRebuiltAtStart(t *testing.T) {
	dir, path, good := rolledUp(t)
	for _, at := range []int{len(good) / 2, len(good) - 40, 20} {
		b := slices.Clone(good)
		b[at] ^= 0x08
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if rep, err := Verify(dir); err != nil || rep.OK {
			t.Fatalf("byte %d: verify passed a damaged rollup: %v", at, err)
		}
		openAt(t, dir, &clock{t: day0.Add(27 * time.Hour)}, Options{}).Close()
		if b, _ := os.ReadFile(path); !bytes.Equal(b, good) {
			t.Fatalf("byte %d: the rollup after a start differs from the one the sealer made", at)
		}
	}
}

// A byte changed in the middle of an open hour's log is damage, not a torn
// tail: every reader (whole, or through a cache) fails naming the log, verify reports it, and the writer that cuts it at
// start says so and verify then names what it kept aside. A tail cut short
// (what a stop leaves) is none of that.
func TestDamagedLogIsAnError(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	for i := range 300 {
		c.set(t0.Add(time.Duration(i) * time.Second))
		l.Add(profile(c.now(), fmt.Sprintf("acct%d", i%40), "10.0.0.1", fmt.Sprintf("p%d", i), false))
	}
	l.Close()
	wal := walPath(dir, partName(t0.Unix()))
	orig, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	w := Window{To: t0.Add(time.Hour)}
	ask := func(opts ...ReaderOption) error {
		r, err := OpenReader(dir, w, opts...)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = r.TookBy(identify.FacetAccount, "acct1")
		return err
	}

	// Cut short: a torn tail, read up to it, verify quiet (the newest log).
	os.WriteFile(wal, orig[:len(orig)-5], 0o600)
	if err := ask(); err != nil {
		t.Fatalf("torn tail: %v", err)
	}
	if rep, err := Verify(dir); err != nil || !rep.OK {
		t.Fatalf("torn tail: verify %v %+v", err, rep)
	}

	// A byte changed a third of the way in: whole frames follow it.
	bad := slices.Clone(orig)
	bad[len(bad)/3] ^= 0x40
	os.WriteFile(wal, bad, 0o600)
	// (A cache that read the bytes before they changed answers from what
	// it read: it reads only what is appended.)
	for name, opts := range map[string][]ReaderOption{"whole": nil, "cache": {WithCache(NewCache(0))}} {
		if err := ask(opts...); err == nil || !strings.Contains(err.Error(), wal) || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s reader over a damaged log: %v", name, err)
		}
	}
	if p := verifyProblem(t, dir, wal, "damaged log"); !strings.Contains(p, "damaged") {
		t.Fatalf("verify: %s", p)
	}

	// The writer cuts it at start, says so, and verify names the file
	// kept aside.
	var logged strings.Builder
	l = openAt(t, dir, c, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	l.Close()
	if !strings.Contains(logged.String(), "damaged log") {
		t.Fatalf("writer's log: %s", logged.String())
	}
	rep, err := Verify(dir)
	if err != nil || rep.OK || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], tornMark) || !strings.Contains(rep.Problems[0], "no query reads") {
		t.Fatalf("verify after the cut: %v %+v", err, rep)
	}
}
