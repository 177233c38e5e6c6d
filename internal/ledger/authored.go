package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
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
//	of the hour's Accesses (uvarint), the Accesses a chunk holds
//	(autChunk, uvarint), per chunk of that many Accesses: the time before
//	its first (the running value its time deltas add to), its least and
//	its greatest time (varints, µs from the hour), where it starts in the
//	time column and in the identity column (uvarints, from the previous
//	chunk's start), then a keyed section (keyed.go; payloads: the count
//	of Accesses, their numbers ascending, delta-coded; an Access naming an
//	author twice is there twice), the SHA-256 of everything before.
//
// The chunks let reach skip what the window decides whole: a chunk whose
// times are all in the window (or all out) needs no time decoded, and the
// identities of the Accesses asked for are reached by skipping varints
// from their chunk's start, so that only the chunk the window's end falls
// in has its times decoded one by one.
const (
	autMagic = "WLEDGERA"
	autExt   = ".aut"
	autChunk = 1024
)

// chunkMark is where a chunk of an hour's Accesses starts in its time and
// identity columns, and its times (µs from the hour).
type chunkMark struct {
	t0, lo, hi        int64
	timeOff, tupleOff uint64
}

func autPath(dir, stem string) string { return filepath.Join(dir, stem+autExt) }

// authored is an hour's author index as a reader maps it.
type authored struct {
	hour   int64
	hash   [32]byte // the sealed hour's it was made from
	n      uint64   // the hour's Accesses
	size   uint64   // Accesses a chunk holds
	chunks []chunkMark
	head   int    // bytes before the keyed section
	k      *keyed // author -> Access numbers
}

// parseAuthored reads an author index (b stays referenced: its blocks are
// decompressed on use). It checks the structure, not the hash (verify
// does).
func parseAuthored(b []byte) (*authored, error) {
	if len(b) < len(autMagic)+32 || string(b[:len(autMagic)]) != autMagic {
		return nil, errors.New("not an hour's author index (bad magic or too short)")
	}
	body := b[:len(b)-32]
	d := decoder{b: body[len(autMagic):]}
	x := &authored{hour: d.varint()}
	copy(x.hash[:], d.bytes(32))
	x.n, x.size = d.uvarint(), d.uvarint()
	if d.err == nil && (x.size == 0 || x.n >= 1<<32 || (x.n+x.size-1)/x.size > uint64(len(d.b)/5)) {
		d.fail(errors.New("bad chunks"))
	}
	if d.err == nil {
		x.chunks = make([]chunkMark, (x.n+x.size-1)/x.size)
	}
	var at chunkMark
	for i := range x.chunks {
		c := chunkMark{t0: d.varint(), lo: d.varint(), hi: d.varint()}
		c.timeOff, c.tupleOff = at.timeOff+d.uvarint(), at.tupleOff+d.uvarint()
		if d.err != nil {
			break
		}
		if c.timeOff < at.timeOff || c.tupleOff < at.tupleOff || c.lo > c.hi {
			d.fail(errors.New("bad chunk"))
			break
		}
		x.chunks[i], at = c, c
	}
	if d.err != nil {
		return nil, fmt.Errorf("header: %w", d.err)
	}
	x.head = len(body) - len(d.b)
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

// authoredParts is what an hour's Accesses section makes of its author
// index: the count of its Accesses, its chunks and its postings.
type authoredParts struct {
	n      uint64
	chunks []chunkMark
	kb     *keyedBuilder
}

// makeAuthored makes the author index of an hour's Accesses section
// (cold): its chunks from the time and identity columns, its postings
// (the keyed section's raw blocks) from the misc and author columns.
func makeAuthored(cold []byte, hour int64, dec *zstd.Decoder) (*authoredParts, error) {
	var pairs []uint64 // author<<32 | Access number: sorted, the postings in order
	n, err := eachAuthored(cold, hour, dec, func(i uint32, _ int64, _ uint64, authors []uint32) {
		for _, a := range authors {
			pairs = append(pairs, uint64(a)<<32|uint64(i))
		}
	})
	if err != nil {
		return nil, err
	}
	tb, _, err := column(cold, dec, colTime)
	if err != nil {
		return nil, err
	}
	ub, _, err := column(cold, dec, colTuple)
	if err != nil {
		return nil, err
	}
	a := &authoredParts{n: n, kb: &keyedBuilder{}}
	var t int64 // µs from the hour
	tl, ul := len(tb), len(ub)
	for i := range n {
		if i%autChunk == 0 {
			a.chunks = append(a.chunks, chunkMark{t0: t, lo: 1<<63 - 1, hi: -1 << 63, timeOff: uint64(tl - len(tb)), tupleOff: uint64(ul - len(ub))})
		}
		dt, k := binary.Varint(tb)
		if k <= 0 {
			return nil, fmt.Errorf("column %d: %w", colTime, errShort)
		}
		tb, t = tb[k:], t+dt
		if ub, err = skipUvarints(ub, 1); err != nil {
			return nil, fmt.Errorf("column %d: %w", colTuple, err)
		}
		c := &a.chunks[len(a.chunks)-1]
		c.lo, c.hi = min(c.lo, t), max(c.hi, t)
	}
	pairs, _ = radixSort(pairs, nil)
	var payload []byte
	for j := 0; j < len(pairs); {
		au := uint32(pairs[j] >> 32)
		e := j
		for e < len(pairs) && uint32(pairs[e]>>32) == au {
			e++
		}
		payload = binary.AppendUvarint(payload[:0], uint64(e-j))
		var prev uint32
		for q := j; q < e; q++ {
			v := uint32(pairs[q])
			payload = binary.AppendUvarint(payload, uint64(v-prev))
			prev = v
		}
		a.kb.add(au, payload)
		j = e
	}
	a.kb.close()
	return a, nil
}

// header is the author index's header for the hour of hash.
func (a *authoredParts) header(hour int64, hash [32]byte) []byte {
	out := append([]byte(nil), autMagic...)
	out = binary.AppendVarint(out, hour)
	out = append(out, hash[:]...)
	out = binary.AppendUvarint(out, a.n)
	out = binary.AppendUvarint(out, autChunk)
	var at chunkMark
	for _, c := range a.chunks {
		out = binary.AppendVarint(out, c.t0)
		out = binary.AppendVarint(out, c.lo)
		out = binary.AppendVarint(out, c.hi)
		out = binary.AppendUvarint(out, c.timeOff-at.timeOff)
		out = binary.AppendUvarint(out, c.tupleOff-at.tupleOff)
		at = c
	}
	return out
}

// skipUvarints passes k uvarints of b, eight bytes at a time where it
// can (a varint ends at a byte below 0x80): reach passes the identities
// of the Accesses between those it asks for.
func skipUvarints(b []byte, k int) ([]byte, error) {
	for k > 0 && len(b) >= 8 {
		ends := ^binary.LittleEndian.Uint64(b) & 0x8080808080808080
		c := bits.OnesCount64(ends)
		if c > k {
			break
		}
		if c == 0 {
			b = b[8:]
			continue
		}
		k -= c
		b = b[(63-bits.LeadingZeros64(ends))/8+1:]
	}
	for ; k > 0; k-- {
		for {
			if len(b) == 0 {
				return b, errShort
			}
			c := b[0]
			b = b[1:]
			if c < 0x80 {
				break
			}
		}
	}
	return b, nil
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
	if p.format < 4 {
		return false, nil
	}
	a, err := makeAuthored(p.cold, p.hour, dec)
	if err != nil {
		return false, fmt.Errorf("%s: Accesses: %w", path, err)
	}
	out := a.kb.appendTo(a.header(p.hour, p.hash), enc)
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

// checkAuthored is the author index b if a reader may use it for the
// sealed hour of that hour and SHA-256: its own SHA-256 checks (the
// reader trusts its chunk marks, which no block checksum covers), it
// parses, and it names that hour by that hash.
func checkAuthored(b []byte, hour int64, hash [32]byte) (*authored, error) {
	if len(b) < 32 || sha256.Sum256(b[:len(b)-32]) != [32]byte(b[len(b)-32:]) {
		return nil, errors.New("SHA-256 does not match the index's content (edited, corrupt or cut)")
	}
	x, err := parseAuthored(b)
	if err != nil {
		return nil, err
	}
	if x.hour != hour || x.hash != hash {
		return nil, fmt.Errorf("names hour %s by hash %s, the directory's hour %s hashes to %s", partName(x.hour), short(x.hash[:]), partName(hour), short(hash[:]))
	}
	return x, nil
}

// authoredUsable reports why the author index of sealed hour stem cannot
// be used (nil: it can), from the index and its hour's trailing hash.
func authoredUsable(dir, stem string) error {
	hour, _ := parseStem(stem)
	f, err := os.Open(segPath(dir, stem))
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	var hash [32]byte
	if info.Size() < 32 {
		return nil // the hour's own problem: verify and the readers report it
	}
	if _, err := f.ReadAt(hash[:], info.Size()-32); err != nil {
		return err
	}
	b, err := os.ReadFile(autPath(dir, stem))
	if err != nil {
		return err
	}
	_, err = checkAuthored(b, hour, hash)
	return err
}

// authorIndex writes the author index of the sealed partition stem and
// reports whether it did; one that fails or cannot be made is not tried
// again until the next start.
func (l *Ledger) authorIndex(stem string, enc *zstd.Encoder, dec *zstd.Decoder) bool {
	made, err := writeAuthored(l.opts.Dir, stem, dec, enc)
	if err != nil {
		l.fail("author index "+stem, err)
	}
	if err != nil || !made {
		if l.noAuthored == nil {
			l.noAuthored = map[string]bool{}
		}
		l.noAuthored[stem] = true
		return false
	}
	l.m.authored.Inc()
	return true
}

// authoredIndexes writes the author index of each sealed format 4 hour
// that has none (the sealer's housekeeping, beside authorIndex after each
// seal, and at start: a ledger sealed before author indexes gets them
// then). At start it also
// rebuilds each index a reader cannot use (an earlier build's format, a
// damaged or stale file), as it builds a missing one: the index is
// derived, the hour is the record. An hour's index is made once: a sealed
// hour does not change.
func (l *Ledger) authoredIndexes(ls *listing, enc *zstd.Encoder, dec *zstd.Decoder) {
	if !l.autChecked {
		l.autChecked = true
		for _, stem := range ls.stems {
			if !ls.seg[stem] || !ls.aut[stem] {
				continue
			}
			if err := authoredUsable(l.opts.Dir, stem); err != nil {
				l.log.Warn("ledger: author index unusable, rebuilt from its hour", slog.String("file", autPath(l.opts.Dir, stem)), slog.String("error", err.Error()))
				ls.aut[stem] = false
			}
		}
	}
	for _, stem := range ls.stems {
		if !ls.seg[stem] || ls.aut[stem] || l.noAuthored[stem] {
			continue
		}
		ls.aut[stem] = l.authorIndex(stem, enc, dec)
	}
}

// verifyAuthored checks the author index of hour stem: its SHA-256, that
// it names the sealed hour with the hash it has (hash; ok false: no such
// sealed hour), and that its postings are what that hour's Accesses make.
// rebuild: the problem is one no reader uses the index with (it does not
// check, parse or name the hour, as checkAuthored tells), which the
// writer mends by rebuilding it from the hour at its next start; an index
// that checks and differs from its hour's is a problem (a reader would
// use it).
func verifyAuthored(dir, stem string, hash [32]byte, sealed bool, dec *zstd.Decoder) (problem string, rebuild bool) {
	path := autPath(dir, stem)
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error(), false
	}
	if !sealed {
		return "its hour is not sealed in the directory (an index left after its hour was removed?)", false
	}
	hour, _ := parseStem(stem)
	x, err := checkAuthored(b, hour, hash)
	if err != nil {
		return err.Error(), true
	}
	sp := segPath(dir, stem)
	sb, err := mapFile(sp)
	if err != nil {
		return err.Error(), false
	}
	defer unmapAll([][]byte{sb})
	p, err := parseSeg(sp, sb)
	if err != nil {
		return fmt.Sprintf("%s: %v", sp, err), false
	}
	if p.format < 4 {
		return "made from a format 3 hour (the sealer makes none)", false
	}
	a, err := makeAuthored(p.cold, p.hour, dec)
	if err != nil {
		return fmt.Sprintf("%s: Accesses: %v", sp, err), false
	}
	if h := a.header(p.hour, p.hash); x.head != len(h) || !bytes.HasPrefix(b, h) {
		return "header " + errAuthoredDiffers.Error(), false
	}
	kb := a.kb
	raws := kb.rawBlocks()
	if len(raws) != len(x.k.first) || !slices.Equal(kb.first, x.k.first) || !slices.Equal(kb.nkeys, x.k.nkeys) {
		return errAuthoredDiffers.Error(), false
	}
	for i, raw := range raws {
		bl, err := x.k.decode(i, dec, nil)
		if err != nil {
			return err.Error(), false
		}
		if !bytes.Equal(bl.raw, raw) {
			return errAuthoredDiffers.Error(), false
		}
	}
	return "", false
}

// errAuthoredDiffers says an author index is not what its hour makes.
var errAuthoredDiffers = errors.New("differs from the index its hour's Accesses make")

// authoredViewers is cutViewers' reading of one hour p through its
// author index x: the postings of the authors asked (sorted; who[k]: the
// indexes of out asking sorted[k]), then, chunk by chunk, the identities
// of the Accesses they name, and their times where the window's end
// falls in the chunk. It returns the views (out's index, tf's value +1)
// of the Accesses in the window; an error when the index or a column
// does not parse (the caller reads the columns then).
func (r *Reader) authoredViewers(p *partition, x *authored, sorted []uint32, who [][]int, tf []uint32, lo, hi int64) ([]view, error) {
	var pairs []uint64 // Access number<<32 | k
	var nums []uint32
	var perr error
	err := x.k.eachSorted(sorted, r.dec, func(k int, payload []byte) {
		var err error
		if nums, err = accessNumbers(payload, x.n, nums[:0]); err != nil && perr == nil {
			perr = fmt.Errorf("%s: author %d: %w", autPath(r.dir, partName(p.hour)), sorted[k], err)
		}
		for _, i := range nums {
			pairs = append(pairs, uint64(i)<<32|uint64(k))
		}
	})
	if err != nil && perr == nil {
		perr = fmt.Errorf("%s: %w", autPath(r.dir, partName(p.hour)), err)
	}
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
	// µs from the hour, as the chunks; an open end stays open (no
	// overflow).
	base := p.hour * 1e6
	lo, hi = max(lo, base-1<<61)-base, min(hi, base+1<<61)-base
	var vs []view
	for q := 0; q < len(pairs); {
		ci := uint64(pairs[q]>>32) / x.size
		c := x.chunks[ci]
		end := q
		for end < len(pairs) && uint64(pairs[end]>>32)/x.size == ci {
			end++
		}
		if c.hi < lo || c.lo > hi { // the chunk is out of the window
			q = end
			continue
		}
		whole := c.lo >= lo && c.hi <= hi
		if c.timeOff > uint64(len(tb)) || c.tupleOff > uint64(len(ub)) {
			return nil, errShort
		}
		tc, uc, t := tb[c.timeOff:], ub[c.tupleOff:], c.t0
		at := ci * x.size // the Access tc and uc start at
		var v uint32      // the facet's value (+1) of the Access last read
		for ; q < end; q++ {
			i := pairs[q] >> 32
			if i >= at { // else the Access just read again (another author of it)
				if uc, err = skipUvarints(uc, int(i-at)); err != nil {
					return nil, fmt.Errorf("column %d: %w", colTuple, err)
				}
				if !whole {
					for ; at <= i; at++ {
						dt, k := binary.Varint(tc)
						if k <= 0 {
							return nil, fmt.Errorf("column %d: %w", colTime, errShort)
						}
						tc, t = tc[k:], t+dt
					}
				}
				tuple, k := binary.Uvarint(uc)
				if k <= 0 {
					return nil, fmt.Errorf("column %d: %w", colTuple, errShort)
				}
				uc, at = uc[k:], i+1
				v = 0
				if tuple < uint64(len(tf)) {
					v = tf[tuple]
				}
			}
			if whole || t >= lo && t <= hi {
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
