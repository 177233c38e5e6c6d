package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// An hour's author index (file HOUR.aut, magic WLEDGERA) maps each author
// whose content the hour served to the numbers of the Accesses that
// served it (their places in the hour's Accesses section), so that reach
// over an hour a window cuts reads the postings of the authors asked and
// the Accesses' time and identity columns, not the misc and author
// columns of every Access (decoding those cost about 9 ms of CPU an hour
// at the density: a week's reach whose window cuts two hours
// spent nearly half its time there). Like a day's rollup it is derived:
// it names the sealed hour it was made from by its SHA-256, verify
// rebuilds it from the hour and compares, a reader uses it only for the
// hour it names (else it reads the columns: the answer is the same), and
// retention removes it before its hour.
//
//	"WLEDGERA", the hour (unix s, varint), the hour's SHA-256, the count
//	of the hour's Accesses (uvarint), a keyed section (keyed.go; payloads:
//	the count of Accesses, their numbers ascending, delta-coded; an Access
//	naming an author twice is there twice), the SHA-256 of everything
//	before.
const (
	autMagic = "WLEDGERA"
	autExt   = ".aut"
)

func autPath(dir, stem string) string { return filepath.Join(dir, stem+autExt) }

// authored is an hour's author index as a reader maps it.
type authored struct {
	hour int64
	hash [32]byte // the sealed hour's it was made from
	n    uint64   // the hour's Accesses
	k    *keyed   // author -> Access numbers
}

// parseAuthored reads an author index (b stays referenced: its blocks are
// decompressed on use). It checks the structure, not the hash (verify
// does).
func parseAuthored(b []byte) (*authored, error) {
	if len(b) < len(autMagic)+32 || string(b[:len(autMagic)]) != autMagic {
		return nil, errors.New("not an hour's author index (bad magic or too short)")
	}
	d := decoder{b: b[len(autMagic) : len(b)-32]}
	x := &authored{hour: d.varint()}
	copy(x.hash[:], d.bytes(32))
	x.n = d.uvarint()
	if d.err != nil {
		return nil, fmt.Errorf("header: %w", d.err)
	}
	if x.hour%3600 != 0 {
		return nil, fmt.Errorf("header: %d is not an hour", x.hour)
	}
	k, err := parseKeyed(d.b)
	if err != nil {
		return nil, fmt.Errorf("postings: %w", err)
	}
	x.k = k
	return x, nil
}

// accessNumbers appends the Access numbers of a payload (each below n).
func accessNumbers(b []byte, n uint64, dst []uint32) ([]uint32, error) {
	d := decoder{b: b}
	c := d.count(1)
	if d.err != nil {
		return dst, d.err
	}
	dst, rest, err := appendSums(d.b, c, n, dst)
	if err == nil && len(rest) != 0 {
		err = errTrailing
	}
	return dst, err
}

// authoredBlocks makes the keyed section's raw blocks of an hour's
// Accesses section (cold), from its misc and author columns, and returns
// the count of its Accesses.
func authoredBlocks(cold []byte, hour int64, dec *zstd.Decoder) (*keyedBuilder, uint64, error) {
	var pairs []uint64 // author<<32 | Access number: sorted, the postings in order
	n, err := eachAuthored(cold, hour, dec, func(i uint32, _ int64, _ uint64, authors []uint32) {
		for _, a := range authors {
			pairs = append(pairs, uint64(a)<<32|uint64(i))
		}
	})
	if err != nil {
		return nil, 0, err
	}
	slices.Sort(pairs)
	b := &keyedBuilder{}
	var payload []byte
	for j := 0; j < len(pairs); {
		a := uint32(pairs[j] >> 32)
		e := j
		for e < len(pairs) && uint32(pairs[e]>>32) == a {
			e++
		}
		payload = binary.AppendUvarint(payload[:0], uint64(e-j))
		var prev uint32
		for q := j; q < e; q++ {
			v := uint32(pairs[q])
			payload = binary.AppendUvarint(payload, uint64(v-prev))
			prev = v
		}
		b.add(a, payload)
		j = e
	}
	b.close()
	return b, n, nil
}

// authoredHeader is an author index's header for the hour of hash with n
// Accesses.
func authoredHeader(hour int64, hash [32]byte, n uint64) []byte {
	out := append([]byte(nil), autMagic...)
	out = binary.AppendVarint(out, hour)
	out = append(out, hash[:]...)
	return binary.AppendUvarint(out, n)
}

// writeAuthored writes the author index of the sealed hour stem (format
// 4): aside, synced, renamed into place. made false: the hour is format 3
// (its Accesses are not columns).
func writeAuthored(dir, stem string, dec *zstd.Decoder, enc *zstd.Encoder) (made bool, err error) {
	path := segPath(dir, stem)
	b, err := mapFile(path)
	if err != nil {
		return false, err
	}
	defer unmapAll([][]byte{b})
	p, err := parseSeg(path, b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if p.format != 4 {
		return false, nil
	}
	kb, n, err := authoredBlocks(p.cold, p.hour, dec)
	if err != nil {
		return false, fmt.Errorf("%s: Accesses: %w", path, err)
	}
	out := kb.appendTo(authoredHeader(p.hour, p.hash, n), enc)
	sum := sha256.Sum256(out)
	out = append(out, sum[:]...)
	ap := autPath(dir, stem)
	tmp := ap + ".tmp"
	os.Remove(tmp)
	if err := writeFileSync(tmp, out); err != nil {
		os.Remove(tmp)
		return false, err
	}
	if err := os.Rename(tmp, ap); err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, syncDir(dir)
}

// authoredIndexes writes the author index of each sealed format 4 hour
// that has none (the sealer, after each seal and at start: a ledger
// sealed before author indexes gets them then). An hour's index is made
// once: a sealed hour does not change.
func (l *Ledger) authoredIndexes(ls *listing, enc *zstd.Encoder, dec *zstd.Decoder) {
	for _, stem := range ls.stems {
		if !ls.seg[stem] || ls.aut[stem] || l.noAuthored[stem] {
			continue
		}
		made, err := writeAuthored(l.opts.Dir, stem, dec, enc)
		if err != nil {
			l.fail("author index "+stem, err)
		}
		if err != nil || !made {
			if l.noAuthored == nil {
				l.noAuthored = map[string]bool{}
			}
			l.noAuthored[stem] = true // tried: not again until the next start
			continue
		}
		ls.aut[stem] = true
		l.m.authored.Inc()
	}
}

// verifyAuthored checks the author index of hour stem: its SHA-256, that
// it names the sealed hour with the hash it has (hash; ok false: no such
// sealed hour), and that its postings are what that hour's Accesses make.
func verifyAuthored(dir, stem string, hash [32]byte, sealed bool, dec *zstd.Decoder) string {
	path := autPath(dir, stem)
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) < 32 || sha256.Sum256(b[:len(b)-32]) != [32]byte(b[len(b)-32:]) {
		return "SHA-256 does not match the index's content (edited or corrupt)"
	}
	x, err := parseAuthored(b)
	if err != nil {
		return err.Error()
	}
	if !sealed {
		return "its hour is not sealed in the directory (an index left after its hour was removed?)"
	}
	if partName(x.hour) != stem {
		return fmt.Sprintf("says it is hour %s", partName(x.hour))
	}
	if x.hash != hash {
		return fmt.Sprintf("names hour %s by hash %s, the hour hashes to %s", stem, short(x.hash[:]), short(hash[:]))
	}
	sp := segPath(dir, stem)
	sb, err := mapFile(sp)
	if err != nil {
		return err.Error()
	}
	defer unmapAll([][]byte{sb})
	p, err := parseSeg(sp, sb)
	if err != nil {
		return fmt.Sprintf("%s: %v", sp, err)
	}
	if p.format != 4 {
		return "made from a format 3 hour (the sealer makes none)"
	}
	kb, n, err := authoredBlocks(p.cold, p.hour, dec)
	if err != nil {
		return fmt.Sprintf("%s: Accesses: %v", sp, err)
	}
	if x.n != n || !bytes.HasPrefix(b, authoredHeader(p.hour, p.hash, n)) {
		return "header " + errAuthoredDiffers.Error()
	}
	raws := kb.rawBlocks()
	if len(raws) != len(x.k.first) || !slices.Equal(kb.first, x.k.first) || !slices.Equal(kb.nkeys, x.k.nkeys) {
		return errAuthoredDiffers.Error()
	}
	for i, raw := range raws {
		bl, err := x.k.decode(i, dec, nil)
		if err != nil {
			return err.Error()
		}
		if !bytes.Equal(bl.raw, raw) {
			return errAuthoredDiffers.Error()
		}
	}
	return ""
}

// errAuthoredDiffers says an author index is not what its hour makes.
var errAuthoredDiffers = errors.New("differs from the index its hour's Accesses make")

// authoredViewers is cutViewers' reading of one hour p through its author
// index x: the postings of the authors asked (sorted; who[k]: the indexes
// of out asking sorted[k]), then one pass over the time and identity
// columns up to the last Access they name. It returns the views (out's
// index, tf's value +1) of the Accesses in the window; an error when the
// index or a column does not parse (the caller reads the columns then).
func (r *Reader) authoredViewers(p *partition, x *authored, sorted []uint32, who [][]int, tf []uint32, lo, hi int64) ([]view, error) {
	var pairs []uint64 // Access number<<32 | k
	var nums []uint32
	var perr error
	x.k.eachSorted(sorted, r.dec, func(k int, payload []byte) {
		var err error
		if nums, err = accessNumbers(payload, x.n, nums[:0]); err != nil && perr == nil {
			perr = fmt.Errorf("%s: author %d: %w", autPath(r.dir, partName(p.hour)), sorted[k], err)
		}
		for _, i := range nums {
			pairs = append(pairs, uint64(i)<<32|uint64(k))
		}
	})
	x.k.mu.Lock()
	if perr == nil && x.k.bad != nil {
		perr = fmt.Errorf("%s: %w", autPath(r.dir, partName(p.hour)), x.k.bad)
	}
	x.k.mu.Unlock()
	if perr != nil {
		return nil, perr
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	slices.Sort(pairs)
	tb, n, err := column(p.cold, r.dec, colTime)
	if err != nil {
		return nil, err
	}
	ub, _, err := column(p.cold, r.dec, colTuple)
	if err != nil {
		return nil, err
	}
	if n != x.n {
		return nil, fmt.Errorf("%s: names %d Accesses, the hour holds %d", autPath(r.dir, partName(p.hour)), x.n, n)
	}
	var vs []view
	t, q := p.hour*1e6, 0
	last := uint32(pairs[len(pairs)-1] >> 32)
	for i := uint32(0); i <= last; i++ {
		dt, k := binary.Varint(tb)
		if k <= 0 {
			return nil, fmt.Errorf("column %d: %w", colTime, errShort)
		}
		tb, t = tb[k:], t+dt
		tuple, k := binary.Uvarint(ub)
		if k <= 0 {
			return nil, fmt.Errorf("column %d: %w", colTuple, errShort)
		}
		ub = ub[k:]
		if uint32(pairs[q]>>32) != i {
			continue
		}
		in := t >= lo && t <= hi
		v := uint32(0)
		if in && tuple < uint64(len(tf)) {
			v = tf[tuple]
		}
		for ; q < len(pairs) && uint32(pairs[q]>>32) == i; q++ {
			if in {
				for _, o := range who[uint32(pairs[q])] {
					vs = append(vs, view{uint32(o), v})
				}
			}
		}
	}
	return vs, nil
}

// view is one impression a cut hour adds: out's index, the facet's value
// +1 (0: the Access lacks it).
type view struct{ i, v uint32 }
