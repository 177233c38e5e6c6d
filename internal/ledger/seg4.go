package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// A sealed partition in format 5 (magic WLEDGER5; format 4, WLEDGER4,
// is the same without the CRC32C):
//
//	"WLEDGER5", hour, first and last Access (unix µs) as varints,
//	the predecessor's SHA-256 (32 bytes),
//	the count of namespaces and the shared dictionary's size in each,
//	the partition's classes (count, name integers),
//	the lengths of three sections (uvarints), the sections:
//	  viewers  keyed: author -> impressions, the identities (tuples)
//	           served their content, delta-coded
//	  takers   keyed: subject -> who-took rows by identity (tuple): the
//	           tuple (delta), classes served, count, first (zig-zag µs
//	           from the hour), last-first (as format 3's rows, table.go)
//	  accesses the Accesses, columns (columns.go)
//	the CRC32C (Castagnoli, u32 little-endian) of everything that is
//	  not compressed: the bytes from the magic to the sections, the two
//	  keyed sections' directories and the Accesses' column directory,
//	the SHA-256 of everything before it.
//
// Identities are tuples (nsTuple: every facet of an Access at once), so
// that one posting answers reach and who-took by any facet: format 3 kept
// a table per facet, three times the postings for the facets an Access
// has. Everything but the header and the directories is compressed; a
// query decompresses the blocks it reads and keeps them (keyed.go).
//
// Readers do not hash a partition (verify does): a week's reach would
// read every byte of 168 hours. Each zstd frame carries the checksum of
// its content (the encoder's default; the decoder checks it), so a
// changed compressed byte fails where it is decompressed; the CRC32C,
// checked when a reader maps the file, covers the rest (about 1.4 KB
// an hour at the density, parsed at open anyway), so that a changed
// first key, block length, class or dictionary size is an error naming
// the file, not another answer. Format 4 has no such check: a byte
// changed in its header or directories may change an answer unseen
// until verify. The trailing SHA-256 is covered by neither: a changed
// byte there changes no answer (a rollup or author index names its hour
// by that hash and is then passed over; the hours answer) and verify
// reports it.
const (
	segMagic4 = "WLEDGER4"
	segMagic5 = "WLEDGER5"
)

// errSegCRC is a format 5 partition whose header or directories do not
// match their CRC32C.
var errSegCRC = errors.New("header or section directories do not match their CRC32C (damaged)")

// index4 is a format 4 partition's index.
type index4 struct {
	classes         []uint32
	viewers, takers *keyed
}

// tupleKey is an identity's key in nsTuple: each facet (+1, 0 absent) as
// a uvarint.
func tupleKey(dst []byte, facets *[NumFacets]uint32) []byte {
	for _, v := range facets {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	return dst
}

// parseTuple reads a tupleKey back; ok false when it is not one.
func parseTuple(b []byte) (facets [NumFacets]uint32, ok bool) {
	d := decoder{b: b}
	for f := range facets {
		v := d.uvarint()
		if v >= 1<<32 {
			return facets, false
		}
		facets[f] = uint32(v)
	}
	return facets, d.err == nil && len(d.b) == 0
}

// tuplesOf gives each entry its tuple, interning new ones with intern.
func tuplesOf(entries []entry, intern func(key []byte) uint32) []uint32 {
	out := make([]uint32, len(entries))
	var key []byte
	for i := range entries {
		key = tupleKey(key[:0], &entries[i].facets)
		out[i] = intern(key)
	}
	return out
}

// builders4 is a format 4 index before compression.
type builders4 struct {
	classes         []uint32
	viewers, takers keyedBuilder
}

// buildIndex4 indexes entries (ids of the shared dictionary); tuples[i]
// is entry i's identity.
func buildIndex4(entries []entry, tuples []uint32, hour int64) *builders4 {
	b := &builders4{}
	var pos map[uint32]int
	b.classes, pos = classTable(entries)
	nauth, nrecs := 0, 0
	for i := range entries {
		nauth, nrecs = nauth+len(entries[i].authors), nrecs+len(entries[i].recs)
	}
	pairs := make([]uint64, 0, nauth)
	for i := range entries {
		for _, a := range entries[i].authors {
			pairs = append(pairs, uint64(a)<<32|uint64(tuples[i]))
		}
	}
	pairs, _ = radixSort(pairs, nil)
	// An author's impressions are its pairs before duplicates go (one a
	// piece of content served), counted from the sorted pairs.
	impr := make([]uint64, 0, len(pairs)/2)
	for i := 0; i < len(pairs); {
		j := i + 1
		for j < len(pairs) && pairs[j]>>32 == pairs[i]>>32 {
			j++
		}
		impr = append(impr, uint64(j-i))
		i = j
	}
	v := pairsOfSorted(pairs)
	var payload []byte
	for k, key := range v.keys {
		payload = appendViewers(payload[:0], impr[k], v.vals[v.off[k]:v.off[k+1]])
		b.viewers.add(uint32(key), payload)
	}
	if len(b.classes) <= maxRowClasses {
		ts := make([]taking, 0, nrecs)
		for i := range entries {
			e := &entries[i]
			for _, r := range e.recs {
				ts = append(ts, taking{subject: r.id, ident: tuples[i], set: servedSet(e, r, pos), t: e.t})
			}
		}
		rs := buildRows(ts, hour*1e6)
		for k, key := range rs.keys {
			b.takers.add(uint32(key), rs.blob[rs.off[k]:rs.off[k+1]])
		}
	}
	return b
}

// encodeSeg writes p (ids of the shared dictionary, sizes set) as a
// sealed partition (format 5) after prev; tuples[i] is entry i's
// identity.
func encodeSeg(p *partition, tuples []uint32, prev [32]byte, enc *zstd.Encoder) ([]byte, [32]byte) {
	b := buildIndex4(p.entries, tuples, p.hour)
	viewers := b.viewers.appendTo(nil, enc)
	takers := b.takers.appendTo(nil, enc)
	accesses := appendColumns(nil, p.entries, tuples, p.hour, enc)
	out := make([]byte, 0, 256+len(viewers)+len(takers)+len(accesses))
	out = append(out, segMagic5...)
	out = binary.AppendVarint(out, p.hour)
	out = binary.AppendVarint(out, p.minT)
	out = binary.AppendVarint(out, p.maxT)
	out = append(out, prev[:]...)
	out = binary.AppendUvarint(out, uint64(len(p.sizes)))
	for _, n := range p.sizes {
		out = binary.AppendUvarint(out, uint64(n))
	}
	out = appendUints(out, b.classes)
	for _, s := range [][]byte{viewers, takers, accesses} {
		out = binary.AppendUvarint(out, uint64(len(s)))
	}
	out = append(out, viewers...)
	out = append(out, takers...)
	out = append(out, accesses...)
	// The CRC32C is what a reader computes: the regions it covers are
	// those the reader's parse finds, so the two cannot disagree on them.
	n := len(out)
	out = append(out, make([]byte, 4+32)...)
	_, sum, err := parseSeg45("", out)
	if err != nil {
		panic(fmt.Sprintf("ledger: a partition just encoded does not parse: %v", err)) // a bug, not data
	}
	out = binary.LittleEndian.AppendUint32(out[:n], sum)
	h := sha256.Sum256(out)
	return append(out, h[:]...), h
}

// parseSeg4 reads a format 4 or 5 partition's header and section
// directories (b stays referenced; blocks and Accesses are decompressed
// on use); format 5's CRC32C is checked.
func parseSeg4(path string, b []byte) (*partition, error) {
	p, sum, err := parseSeg45(path, b)
	if err != nil {
		return nil, err
	}
	if p.format == 5 && sum != binary.LittleEndian.Uint32(b[len(b)-36:]) {
		return nil, errSegCRC
	}
	return p, nil
}

// parseSeg45 is parseSeg4 without the check: it returns the CRC32C of
// the regions format 5's covers (the header, the keyed sections'
// directories, the column directory; what the sealer stores).
func parseSeg45(path string, b []byte) (*partition, uint32, error) {
	tail, format := 32, 4
	if len(b) >= len(segMagic5) && string(b[:len(segMagic5)]) == segMagic5 {
		tail, format = 36, 5
	}
	if len(b) < len(segMagic4)+tail {
		return nil, 0, errors.New("not a sealed ledger partition (too short)")
	}
	d := decoder{b: b[len(segMagic4) : len(b)-tail]}
	p := newPartition(path, d.varint())
	p.sealed = true
	p.minT, p.maxT = d.varint(), d.varint()
	copy(p.prev[:], d.bytes(32))
	if n := d.uvarint(); n > uint64(nsCount) {
		d.fail(fmt.Errorf("%d namespaces, this warden knows %d", n, nsCount))
	} else {
		for ns := range int(n) {
			v := d.uvarint()
			if v > 1<<32 {
				d.fail(errors.New("bad dictionary size"))
			}
			p.sizes[ns] = int(v)
		}
	}
	x := &index4{classes: d.refs(p.sizes[nsName])}
	var lens [3]uint64
	for i := range lens {
		lens[i] = d.uvarint()
	}
	if d.err != nil {
		return nil, 0, fmt.Errorf("header: %w", d.err)
	}
	if lens[0] > uint64(len(d.b)) || lens[1] > uint64(len(d.b)) || lens[0]+lens[1]+lens[2] != uint64(len(d.b)) {
		return nil, 0, errors.New("header: sections do not fit the file (truncated or corrupt)")
	}
	head := b[:len(b)-tail-len(d.b)]
	var err error
	if x.viewers, err = parseKeyed(d.b[:lens[0]]); err != nil {
		return nil, 0, fmt.Errorf("viewers: %w", err)
	}
	if x.takers, err = parseKeyed(d.b[lens[0] : lens[0]+lens[1]]); err != nil {
		return nil, 0, fmt.Errorf("takers: %w", err)
	}
	p.cold, p.format = d.b[lens[0]+lens[1]:], format
	copy(p.hash[:], b[len(b)-32:])
	p.v4 = x
	var sum uint32
	if format == 5 {
		// The column directory is parsed here only for its length: its
		// readers parse it again where they read the columns.
		cd, err := parseColumnDir(p.cold)
		if err != nil {
			return nil, 0, fmt.Errorf("accesses: %w", err)
		}
		sum = crc32.Update(0, castagnoli, head)
		sum = crc32.Update(sum, castagnoli, d.b[:x.viewers.dir])
		sum = crc32.Update(sum, castagnoli, d.b[lens[0]:lens[0]+uint64(x.takers.dir)])
		sum = crc32.Update(sum, castagnoli, p.cold[:cd.size])
	}
	return p, sum, nil
}

// index4Matches rebuilds a format 4 partition's index from its Accesses
// (decoded) and compares it, block by block, with the one stored; d is
// the shared dictionary (the tuples).
func (p *partition) index4Matches(d *dictionary, dec *zstd.Decoder) (bool, error) {
	missing := false
	tuples := tuplesOf(p.entries, func(key []byte) uint32 {
		v, ok := d.t[nsTuple].find(string(key))
		missing = missing || !ok
		return v
	})
	if missing {
		return false, errors.New("an Access's identity is not in the dictionary")
	}
	b := buildIndex4(p.entries, tuples, p.hour)
	if !slices.Equal(b.classes, p.v4.classes) {
		return false, nil
	}
	for _, s := range []struct {
		b *keyedBuilder
		k *keyed
	}{{&b.viewers, p.v4.viewers}, {&b.takers, p.v4.takers}} {
		got, err := s.k.rawBlocks(dec)
		if err != nil {
			return false, err
		}
		want := s.b.rawBlocks()
		if !slices.Equal(s.b.first, s.k.first) || !slices.Equal(s.b.nkeys, s.k.nkeys) || len(got) != len(want) {
			return false, nil
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				return false, nil
			}
		}
	}
	return true, nil
}

// viewers4 appends the identities (facet values of f, through tf: tuple
// -> value+1) of a viewers payload (an author's), and returns its
// impressions; an error when the payload does not decode or names a
// tuple past tf (the dictionary). The tuples are decoded first and
// mapped after, in a loop of independent loads: tf (4 bytes a tuple,
// megabytes) is read at random, and a load that waits for the varint
// before it cannot overlap the cache misses of the others.
func viewers4(b []byte, tf []uint32, dst []uint32) ([]uint32, uint64, error) {
	d := decoder{b: b}
	impr := d.uvarint()
	n := d.count(1)
	if d.err != nil {
		return dst, impr, d.err
	}
	start := len(dst)
	dst, rest, err := appendSums(d.b, n, uint64(len(tf)), dst)
	if err == nil && len(rest) != 0 {
		err = errTrailing
	}
	if err != nil {
		return dst[:start], impr, err
	}
	j := start
	for _, t := range dst[start:] {
		if v := tf[t]; v != 0 {
			dst[j] = v - 1
			j++
		}
	}
	return dst[:j], impr, nil
}

// rows4 is who-took's rows of subject in p, identities as facet values +1
// of f (tf: tuple -> value; 0: Accesses without f); an error when the
// subject's block or rows do not decode.
func (x *index4) rows4(subject uint32, hour int64, tf []uint32, dec *zstd.Decoder) ([]row, error) {
	b, err := x.takers.get(subject, dec)
	if err != nil || b == nil {
		return nil, err
	}
	rs := decodeRows(b, hour)
	if rs == nil {
		return nil, fmt.Errorf("subject %d: %w", subject, errKeyed)
	}
	for i := range rs {
		if int(rs[i].ident) >= len(tf) {
			return nil, fmt.Errorf("subject %d: identity %d past the dictionary's %d", subject, rs[i].ident, len(tf))
		}
		rs[i].ident = tf[rs[i].ident]
	}
	return rs, nil
}
