package ledger

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
)

// tables is one partition's index, over the shared dictionary's integers
// (identities by facet, platform ids, names). The hot tables are what
// reach and who-took read, stored uncompressed and read where they lie;
// the cold ones sit compressed with the Accesses.
type tables struct {
	// hot
	viewers [NumFacets]csr  // author -> identities served their content
	impr    csr             // author -> [pieces of their content served]
	classes []uint32        // bit i of a row's set is class classes[i]
	takers  [NumFacets]rows // subject -> who was served it (empty when len(classes) > 64)
	// cold
	took   [NumFacets]csr // ident<<32|class -> subjects served (class 0: any record, else name+1)
	masked [NumFacets]csr // ident<<32|class -> subjects whose class was masked
	lists  [NumFacets]csr // ident -> lists fetched (answers, not refusals)
	spans  [NumFacets]csr // ident -> [first lo, hi, last lo, hi (unix µs), Accesses]
}

// maxRowClasses is the most classes a partition's who-took rows can name;
// past it, who-took reads that partition's Accesses.
const maxRowClasses = 64

// buildTables indexes entries (ids of the shared dictionary).
func buildTables(entries []entry, hour int64) *tables {
	x := &tables{}
	pos := map[uint32]int{}
	for i := range entries {
		for _, c := range entries[i].classes {
			if _, ok := pos[c]; !ok {
				pos[c] = 0
				x.classes = append(x.classes, c)
			}
		}
	}
	slices.Sort(x.classes)
	for i, c := range x.classes {
		pos[c] = i
	}
	withRows := len(x.classes) <= maxRowClasses
	var viewers, lists [NumFacets][]uint64
	var took, masked [NumFacets][]kv
	var takers [NumFacets][]taking
	type span struct{ first, last, n int64 }
	var spans [NumFacets]map[uint32]*span
	impr := map[uint32]uint32{}
	for f := range spans {
		spans[f] = map[uint32]*span{}
	}
	var sets []uint64
	for i := range entries {
		e := &entries[i]
		for _, a := range e.authors {
			impr[a]++
		}
		sets = sets[:0]
		for _, r := range e.recs {
			var set uint64
			if withRows {
				for s := r.classes &^ r.masked; s != 0; s &= s - 1 {
					if b := bits.TrailingZeros64(s); b < len(e.classes) {
						set |= 1 << pos[e.classes[b]]
					}
				}
			}
			sets = append(sets, set)
		}
		for f, v := range e.facets {
			if withRows {
				for k, r := range e.recs {
					takers[f] = append(takers[f], taking{subject: r.id, ident: v, set: sets[k], t: e.t})
				}
			}
			if v == 0 {
				continue
			}
			ident := v - 1
			sp := spans[f][ident]
			if sp == nil {
				sp = &span{first: e.t, last: e.t}
				spans[f][ident] = sp
			}
			sp.first, sp.last, sp.n = min(sp.first, e.t), max(sp.last, e.t), sp.n+1
			key := uint64(ident) << 32
			for _, r := range e.recs {
				took[f] = append(took[f], kv{key, r.id})
				for s := r.classes &^ r.masked; s != 0; s &= s - 1 {
					if c, ok := classAt(e, bits.TrailingZeros64(s)); ok {
						took[f] = append(took[f], kv{key | uint64(c), r.id})
					}
				}
				for s := r.classes & r.masked; s != 0; s &= s - 1 {
					if c, ok := classAt(e, bits.TrailingZeros64(s)); ok {
						masked[f] = append(masked[f], kv{key | uint64(c), r.id})
					}
				}
			}
			for _, a := range e.authors {
				viewers[f] = append(viewers[f], uint64(a)<<32|uint64(ident))
			}
			if e.list != 0 && e.status < 400 { // a refusal fetched nothing
				lists[f] = append(lists[f], uint64(ident)<<32|uint64(e.list-1))
			}
		}
	}
	for f := range x.viewers {
		x.viewers[f] = buildPairs(viewers[f])
		x.lists[f] = buildPairs(lists[f])
		x.took[f] = buildCSR(took[f])
		x.masked[f] = buildCSR(masked[f])
		x.takers[f] = buildRows(takers[f], hour*1e6)
		x.spans[f] = buildSpans(spans[f], func(sp *span) [5]uint32 {
			return [5]uint32{uint32(sp.first), uint32(sp.first >> 32), uint32(sp.last), uint32(sp.last >> 32), uint32(sp.n)}
		})
	}
	ps := make([]uint64, 0, len(impr))
	for a, n := range impr {
		ps = append(ps, uint64(a)<<32|uint64(n))
	}
	x.impr = buildPairs(ps)
	return x
}

// buildSpans makes a table of five values per key, in the order given
// (not sorted as postings are).
func buildSpans[S any](m map[uint32]S, vals func(S) [5]uint32) csr {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t := csr{keys: make([]uint64, len(keys)), off: make([]uint32, len(keys)+1), vals: make([]uint32, 0, 5*len(keys))}
	for i, k := range keys {
		t.keys[i] = uint64(k)
		t.off[i] = uint32(len(t.vals))
		v := vals(m[k])
		t.vals = append(t.vals, v[:]...)
	}
	t.off[len(keys)] = uint32(len(t.vals))
	return t
}

// span reads an identity's first and last Access and their count.
func span(t *csr, ident uint32) (first, last int64, n int, ok bool) {
	v := t.get(uint64(ident))
	if len(v) != 5 {
		return 0, 0, 0, false
	}
	return int64(uint64(v[0]) | uint64(v[1])<<32), int64(uint64(v[2]) | uint64(v[3])<<32), int(v[4]), true
}

// classAt is the class key (name+1) of bit i of e's classes.
func classAt(e *entry, i int) (uint32, bool) {
	if i >= len(e.classes) {
		return 0, false
	}
	return e.classes[i] + 1, true
}

// appendHot and appendCold serialise the tables deterministically, so that
// a verifier can rebuild them from the Accesses and compare bytes.
func (x *tables) appendHot(dst []byte) []byte {
	for f := range x.viewers {
		dst = x.viewers[f].appendTo(dst)
	}
	dst = x.impr.appendTo(dst)
	cl := csr{keys: []uint64{0}, off: []uint32{0, uint32(len(x.classes))}, vals: x.classes}
	dst = cl.appendTo(dst)
	for f := range x.takers {
		dst = x.takers[f].appendTo(dst)
	}
	return dst
}

func (x *tables) appendCold(dst []byte) []byte {
	for _, fam := range []*[NumFacets]csr{&x.took, &x.masked, &x.lists, &x.spans} {
		for f := range fam {
			dst = fam[f].appendTo(dst)
		}
	}
	return dst
}

var errTrailing = errors.New("trailing bytes")

func (x *tables) parseHot(b []byte) error {
	var err error
	for f := range x.viewers {
		if x.viewers[f], b, err = parseCSR(b); err != nil {
			return err
		}
	}
	if x.impr, b, err = parseCSR(b); err != nil {
		return err
	}
	var cl csr
	if cl, b, err = parseCSR(b); err != nil {
		return err
	}
	x.classes = cl.vals
	for f := range x.takers {
		if x.takers[f], b, err = parseRows(b); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return errTrailing
	}
	return nil
}

func (x *tables) parseCold(b []byte) error {
	var err error
	for _, fam := range []*[NumFacets]csr{&x.took, &x.masked, &x.lists, &x.spans} {
		for f := range fam {
			if fam[f], b, err = parseCSR(b); err != nil {
				return err
			}
		}
	}
	if len(b) != 0 {
		return errTrailing
	}
	return nil
}

// appendEntries and the cold part: the Accesses, length-prefixed.
func appendEntries(dst []byte, entries []entry, hour int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	var eb []byte
	for i := range entries {
		eb = appendEntry(eb[:0], &entries[i], hour*1e6)
		dst = binary.AppendUvarint(dst, uint64(len(eb)))
		dst = append(dst, eb...)
	}
	return pad8(dst)
}
