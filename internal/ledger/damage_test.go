package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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

// The fuzz targets' property on a real ledger: damage anywhere in an
// hour is an error or the intact answer, never a panic.
func TestDamageEveryByteRange(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 27, Options{})
	hour := day0.Add(25 * time.Hour)
	qs := damageQueries(hour)
	if _, failed, _ := runDamage(t, dir, qs, nil); len(failed) > 0 {
		t.Fatalf("intact ledger: %v", failed)
	}
	seg := segPath(dir, partName(hour.Unix()))
	orig, _ := os.ReadFile(seg)
	defer os.WriteFile(seg, orig, 0o600)
	for i := 8; i < len(orig)-32; i += max(1, len(orig)/97) {
		b := slices.Clone(orig)
		b[i] ^= 0x41
		os.WriteFile(seg, b, 0o600)
		// The header is not hashed by the reader (verify checks it): an
		// answer may differ, an error must name the file.
		_, failed, _ := runDamage(t, dir, qs, nil)
		for name, err := range failed {
			if !strings.Contains(err.Error(), seg) {
				t.Errorf("byte %d: %s: %v, want an error naming %s", i, name, err, seg)
			}
		}
	}
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

// A day rollup damaged where the reader does not look (a byte of its
// keys' directory: no block checksum covers it) is found by its SHA-256
// when a writer starts, and rebuilt from its hours.
func TestDamagedRollupRebuiltAtStart(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 26, Options{})
	path := rollupPath(dir, day0.Unix())
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
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
