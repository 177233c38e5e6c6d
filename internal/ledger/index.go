package ledger

import (
	"errors"
	"math/bits"
	"slices"
)

// tables is one partition's index, over the shared dictionary's integers
// (identities by facet, platform ids, names): what reach and who-took
// read, stored uncompressed and read where they lie. Took-by and explain
// read the Accesses (format 3 keeps no cold tables: took-by decompressed
// the Accesses anyway, and its tables were about a quarter of the bytes).
type tables struct {
	viewers [NumFacets]csr  // author -> identities served their content
	impr    csr             // author -> [pieces of their content served]
	classes []uint32        // bit i of a row's set is class classes[i]
	takers  [NumFacets]rows // subject -> who was served it (empty when len(classes) > 64, or see absentRows)
}

// maxRowClasses is the most classes a partition's who-took rows can name;
// past it, who-took reads that partition's Accesses.
const maxRowClasses = 64

// buildTables indexes entries (ids of the shared dictionary).
func buildTables(entries []entry, hour int64) *tables {
	x := &tables{}
	var pos map[uint32]int
	x.classes, pos = classTable(entries)
	withRows := len(x.classes) <= maxRowClasses
	// A facet no Access of the partition has gets no who-took rows (they
	// would all say "without it"): rowsFor answers from another
	// facet's. One facet's rows are kept when no facet is present at all.
	var present [NumFacets]bool
	for i := range entries {
		for f, v := range entries[i].facets {
			present[f] = present[f] || v != 0
		}
	}
	if !slices.Contains(present[:], true) {
		present[0] = true
	}
	var viewers [NumFacets][]uint64
	var takers [NumFacets][]taking
	nrecs, nauth := 0, 0
	for i := range entries {
		nrecs, nauth = nrecs+len(entries[i].recs), nauth+len(entries[i].authors)
	}
	for f := range takers {
		if withRows && present[f] {
			takers[f] = make([]taking, 0, nrecs)
		}
		if present[f] {
			viewers[f] = make([]uint64, 0, nauth)
		}
	}
	impr := map[uint32]uint32{}
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
				set = servedSet(e, r, pos)
			}
			sets = append(sets, set)
		}
		for f, v := range e.facets {
			if withRows && present[f] {
				for k, r := range e.recs {
					takers[f] = append(takers[f], taking{subject: r.id, ident: v, set: sets[k], t: e.t})
				}
			}
			if v == 0 {
				continue
			}
			for _, a := range e.authors {
				viewers[f] = append(viewers[f], uint64(a)<<32|uint64(v-1))
			}
		}
	}
	for f := range x.viewers {
		x.viewers[f] = buildPairs(viewers[f])
		x.takers[f] = buildRows(takers[f], hour*1e6)
	}
	ps := make([]uint64, 0, len(impr))
	for a, n := range impr {
		ps = append(ps, uint64(a)<<32|uint64(n))
	}
	x.impr = buildPairs(ps)
	return x
}

// classTable is the partition's classes (sorted name integers) and the
// bit of each in a row's set.
func classTable(entries []entry) ([]uint32, map[uint32]int) {
	var classes []uint32
	pos := map[uint32]int{}
	for i := range entries {
		for _, c := range entries[i].classes {
			if _, ok := pos[c]; !ok {
				pos[c] = 0
				classes = append(classes, c)
			}
		}
	}
	slices.Sort(classes)
	for i, c := range classes {
		pos[c] = i
	}
	return classes, pos
}

// servedSet is the classes of r that e served unmasked, as a set over the
// partition's class table (pos); only for tables of at most
// maxRowClasses classes.
func servedSet(e *entry, r rec, pos map[uint32]int) uint64 {
	var set uint64
	for s := r.classes &^ r.masked; s != 0; s &= s - 1 {
		if b := bits.TrailingZeros64(s); b < len(e.classes) {
			set |= 1 << pos[e.classes[b]]
		}
	}
	return set
}

// rowsFor is the who-took table that answers for facet f: f's own, or,
// when f's is empty (no Access of the partition had f, or no record was
// served), the first facet's that is not, whose identities then all read
// as "without f" (0). Rows of one facet split the same Access-record
// pairs as f's would have, so summed they give f's.
func (x *tables) rowsFor(f int) (r *rows, absent bool) {
	if len(x.takers[f].keys) > 0 {
		return &x.takers[f], false
	}
	for g := range x.takers {
		if len(x.takers[g].keys) > 0 {
			return &x.takers[g], true
		}
	}
	return &x.takers[f], false
}

// classAt is the class key (name+1) of bit i of e's classes.
func classAt(e *entry, i int) (uint32, bool) {
	if i >= len(e.classes) {
		return 0, false
	}
	return e.classes[i] + 1, true
}

// appendHot serialises the tables deterministically, so that
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
