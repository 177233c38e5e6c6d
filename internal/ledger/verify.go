package ledger

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// VerifiedPartition is what verify found of one partition.
type VerifiedPartition struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Sealed   bool   `json:"sealed"`
	Accesses int    `json:"accesses"`
	Hash     string `json:"hash,omitempty"` // sealed: its SHA-256
	Prev     string `json:"prev,omitempty"` // sealed: its predecessor's, as it says
	OK       bool   `json:"ok"`
	Problem  string `json:"problem,omitempty"`
}

// VerifiedRollup is what verify found of one day's rollup.
type VerifiedRollup struct {
	Day     string `json:"day"`
	File    string `json:"file"`
	Hours   int    `json:"hours"` // the day's sealed partitions (hours, or their parts) it must name
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// VerifiedIndex is what verify found of one hour's author index.
type VerifiedIndex struct {
	Hour    string `json:"hour"`
	File    string `json:"file"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
	// Rebuild: the index is unusable (does not check, parse or name its
	// hour): derived, not the record, it is passed over by the queries
	// and rebuilt from its hour by the writer at its next start.
	Rebuild bool `json:"rebuild,omitempty"`
}

// VerifyReport is the chain check of a directory.
type VerifyReport struct {
	Dir        string              `json:"dir"`
	Retired    int                 `json:"retired"` // partitions retention removed (their hashes anchor the chain)
	Partitions []VerifiedPartition `json:"partitions"`
	// Rollups are the days' reach rollups (rollup.go), each checked
	// against the sealed hours it names.
	Rollups []VerifiedRollup `json:"rollups"`
	// AuthorIndexes are the hours' author indexes (authored.go), each
	// rebuilt from the sealed hour it names and compared; the index of an
	// hour that has a problem is not checked (not ok, and not another
	// problem: the hour's is the one to mend).
	AuthorIndexes []VerifiedIndex `json:"author_indexes"`
	// Rebuild lists the derived files (author indexes) that no query
	// uses as they are and the writer rebuilds from their hours at its
	// next start: not damage to the ledger (OK does not count them), a
	// file to mend.
	Rebuild []string `json:"rebuild"`
	// Head is the hash of the last sealed partition: record it elsewhere
	// and a later verify shows nothing before it was rewritten.
	Head     string   `json:"head"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

// Verify checks every partition of dir: each sealed one's hash, that it
// names its predecessor's hash (the first, the last one retention
// removed), that its body decodes and that its index is what its Accesses
// make; each log's frames up to its end (a log's last frame may be in
// the middle of being written by a running gateway: that is noted only for
// the newest log).
//
// dir may be a running gateway's: what its writer does while verify reads
// is not damage. A log sealed since the directory was listed is verified
// sealed; a sealed hour retention removed meanwhile (noted in `retired`
// before its removal) is counted as retired, and its author index and its
// day's rollup, removed before it, are not checked.
func Verify(dir string) (*VerifyReport, error) {
	ls, err := list(dir)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		rep, err := verifyListed(dir, ls)
		if err != nil || rep.OK || attempt == 3 {
			return rep, err
		}
		// A directory's listing is no snapshot: a part sealed (its log
		// renamed) while the listing read past it can be in neither
		// form, and the chain then seems broken at its successor. A
		// ledger whose files changed since is verified again; a still
		// one's problems are its own, reported the first time.
		now, err := list(dir)
		if err != nil || sameListing(ls, now) {
			return rep, nil
		}
		ls = now
	}
}

// sameListing says a and b list the same partitions in the same forms.
func sameListing(a, b *listing) bool {
	return slices.Equal(a.stems, b.stems) && maps.Equal(a.seg, b.seg) && maps.Equal(a.wal, b.wal)
}

// verifyListed verifies dir as ls lists it (Verify).
func verifyListed(dir string, ls *listing) (*VerifyReport, error) {
	if err := isLedger(dir, ls); err != nil {
		return nil, err
	}
	rep := &VerifyReport{Dir: dir, Partitions: []VerifiedPartition{}, Rollups: []VerifiedRollup{}, AuthorIndexes: []VerifiedIndex{}, Rebuild: []string{}, Problems: []string{}}
	ret, err := readRetired(dir)
	if err != nil {
		return nil, err
	}
	rep.Retired = len(ret)
	// The chain starts from the last partition retired before the first
	// one listed: retention may have removed some of those listed since.
	var expect [32]byte
	first := ""
	for _, s := range ls.stems {
		if ls.seg[s] {
			first = s
			break
		}
	}
	for _, r := range ret {
		if first != "" && r.stem >= first {
			break
		}
		expect = r.hash
	}
	retiredAs := func(stem string) ([32]byte, bool) {
		for _, r := range ret {
			if r.stem == stem {
				return r.hash, true
			}
		}
		return [32]byte{}, false
	}
	// retiredSince reads `retired` again and says whether stem is in it,
	// retired since the listing: the chain then goes on from its hash and
	// its derived files are gone with it.
	gone := map[string]bool{} // sealed hours retention removed since the listing
	retiredSince := func(stem string) (bool, error) {
		now, err := readRetired(dir)
		if err != nil {
			return false, err
		}
		ret = now
		h, ok := retiredAs(stem)
		if ok {
			expect, gone[stem] = h, true
			rep.Retired = len(ret)
		}
		return ok, nil
	}
	dec, err := newDecoder(1)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	d, err := loadDictionary(dir)
	if err != nil {
		return nil, err
	}
	lastWal := ""
	for _, s := range ls.stems {
		if ls.wal[s] && !ls.seg[s] {
			lastWal = s
		}
	}
	hashes := map[string][32]byte{} // sealed hours' hashes as written, for the rollups
	dayStems := map[int64][]string{}
	bad := map[string]bool{} // sealed hours with a problem
	for _, stem := range ls.stems {
		vp := VerifiedPartition{Name: stem, Sealed: ls.seg[stem]}
		var b []byte
		if !vp.Sealed {
			vp.File = walPath(dir, stem)
			b, err = os.ReadFile(vp.File)
			if errors.Is(err, os.ErrNotExist) {
				if _, serr := os.Stat(segPath(dir, stem)); serr != nil {
					// An empty log the sealer removed, or one sealed and
					// then retired since the listing: that one's hash, in
					// `retired` before its removal, is what its successor
					// names (skipped, the chain broke there about one
					// verify in 3,000 of a gateway sealing every 5 ms).
					if _, err := retiredSince(stem); err != nil {
						return nil, err
					}
					continue
				}
				// Sealed since the listing: its new ids went to the
				// dictionary before it was renamed into place.
				nd, derr := loadDictionary(dir)
				if derr != nil {
					return nil, derr
				}
				d, vp.Sealed = nd, true
			}
		}
		if vp.Sealed {
			vp.File = segPath(dir, stem)
			b, err = os.ReadFile(vp.File)
			if errors.Is(err, os.ErrNotExist) {
				// Removed since the listing? Retention notes a partition
				// in `retired` before removing it. (One still there is
				// verified, whatever `retired` says.)
				if ok, err := retiredSince(stem); err != nil {
					return nil, err
				} else if ok {
					continue
				}
			}
			vp.Problem = verifySeg(&vp, b, err, &expect, dec, d)
			hashes[stem] = expect
			bad[stem] = vp.Problem != ""
			h, _ := parseStem(stem)
			dayStems[dayOf(h)] = append(dayStems[dayOf(h)], stem)
		} else {
			switch {
			case err != nil:
				vp.Problem = err.Error()
			default:
				p, valid, why := readLog(vp.File, b)
				if p != nil {
					vp.Accesses = len(p.entries)
				}
				if err := logDamage(vp.File, b, valid, why); p != nil && err != nil {
					vp.Problem = err.Error()
				} else if valid != len(b) && !(stem == lastWal && p != nil) {
					vp.Problem = fmt.Sprintf("%v (%d bytes after byte %d; the gateway cuts and keeps them aside at its next start)", why, len(b)-valid, valid)
				}
			}
		}
		vp.OK = vp.Problem == ""
		if !vp.OK {
			rep.Problems = append(rep.Problems, vp.File+": "+vp.Problem)
		}
		rep.Partitions = append(rep.Partitions, vp)
	}
	for _, day := range slices.Sorted(maps.Keys(ls.days)) {
		vr := VerifiedRollup{Day: dayStem(day), File: rollupPath(dir, day), Hours: len(dayStems[day])}
		vr.Problem = verifyRollup(dir, day, dayStems[day], hashes, d.tupleFacet, rollupFanIn, dec)
		if vr.Problem != "" && removed(vr.File) {
			continue // retention removed it (before the day's first hour it removes)
		}
		vr.OK = vr.Problem == ""
		if !vr.OK {
			rep.Problems = append(rep.Problems, vr.File+": "+vr.Problem)
		}
		rep.Rollups = append(rep.Rollups, vr)
	}
	for _, stem := range slices.Sorted(maps.Keys(ls.aut)) {
		vi := VerifiedIndex{Hour: stem, File: autPath(dir, stem)}
		if gone[stem] {
			continue // retention removed it with its hour
		}
		if bad[stem] {
			// Its hour's problem is the one to report; the index cannot be
			// rebuilt from it.
			vi.Problem = "not checked: its hour does not verify"
			rep.AuthorIndexes = append(rep.AuthorIndexes, vi)
			continue
		}
		vi.Problem, vi.Rebuild = verifyAuthored(dir, stem, hashes[stem], ls.seg[stem], dec)
		if vi.Problem != "" && removed(vi.File) {
			continue // retention removed it, before its hour
		}
		vi.OK = vi.Problem == ""
		switch {
		case vi.Rebuild:
			rep.Rebuild = append(rep.Rebuild, vi.File+": "+vi.Problem+" (derived: queries answer from the hour; the writer rebuilds it at its next start)")
		case !vi.OK:
			rep.Problems = append(rep.Problems, vi.File+": "+vi.Problem)
		}
		rep.AuthorIndexes = append(rep.AuthorIndexes, vi)
	}
	// What a writer cut from a damaged log and kept aside holds whole
	// frames: Accesses no query reads. A torn tail (a stop's) holds none.
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	for _, de := range des {
		if !strings.Contains(de.Name(), tornMark) || !de.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, de.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			rep.Problems = append(rep.Problems, path+": "+err.Error())
			continue
		}
		if at, ok := wholeFramesAfter(b, -1); ok {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: cut from a damaged log and kept aside: whole frames from byte %d (%d bytes) hold Accesses no query reads", path, at, len(b)-at))
		}
	}
	rep.Head = hex.EncodeToString(expect[:])
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// removed says path is gone: a derived file retention removed while
// verify read the directory.
func removed(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// verifySeg checks one sealed partition, b as read (err, its read's
// error); expect is the hash its predecessor field must hold, and becomes
// its own hash.
func verifySeg(vp *VerifiedPartition, b []byte, err error, expect *[32]byte, dec *zstd.Decoder, d *dictionary) string {
	if err != nil {
		return err.Error()
	}
	want := *expect
	if len(b) >= 32 {
		// The next partition names this one's hash as written, so an
		// edit is reported here and not again at its successor.
		copy(expect[:], b[len(b)-32:])
	}
	p, err := readSeg(vp.File, b, dec, &d.t[nsTuple])
	if err != nil {
		return err.Error()
	}
	vp.Hash, vp.Prev = hex.EncodeToString(p.hash[:]), hex.EncodeToString(p.prev[:])
	vp.Accesses = len(p.entries) // it decoded: what it holds, whatever else fails
	if p.prev != want {
		return fmt.Sprintf("chain broken: names predecessor %s, the partition before it hashes to %s (a partition was edited, removed or inserted)",
			short(p.prev[:]), short(want[:]))
	}
	if partName(p.hour) != vp.Name {
		return fmt.Sprintf("says it is partition %s", partName(p.hour))
	}
	for ns, n := range p.sizes {
		if n > d.t[ns].len() {
			return fmt.Sprintf("refers to %d ids of namespace %d, the dictionary (%s) holds %d", n, ns, idsFile, d.t[ns].len())
		}
	}
	if p.format >= 4 {
		ok, err := p.index4Matches(d, dec)
		if err != nil {
			return "index: " + err.Error()
		}
		if !ok {
			return "index differs from the index its Accesses make"
		}
		return ""
	}
	if !p.indexMatches() {
		return "index differs from the index its Accesses make"
	}
	return ""
}

func short(b []byte) string { return hex.EncodeToString(b)[:16] }
