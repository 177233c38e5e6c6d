package ledger

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"
)

// A posting table (csr) maps sorted 64-bit keys to sorted lists of 32-bit
// integers, laid out so that a query reads it where it lies (a mapped
// file) without decoding:
//
//	n u64, nv u64, keys [n]u64, off [n+1]u32, pad to 8, vals [nv]u32, pad to 8
//
// little-endian. off[i]..off[i+1] are key i's values. A malformed table is
// caught where it is read (get checks the offsets it uses), never a panic.
type csr struct {
	keys []uint64
	off  []uint32
	vals []uint32
}

// kv is one posting: key -> val.
type kv struct {
	k uint64
	v uint32
}

// buildCSR sorts and dedupes ps into a table.
func buildCSR(ps []kv) csr {
	slices.SortFunc(ps, func(a, b kv) int {
		if c := cmp.Compare(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.v, b.v)
	})
	ps = slices.Compact(ps)
	var t csr
	for i, p := range ps {
		if i == 0 || p.k != ps[i-1].k {
			t.keys = append(t.keys, p.k)
			t.off = append(t.off, uint32(len(t.vals)))
		}
		t.vals = append(t.vals, p.v)
	}
	t.off = append(t.off, uint32(len(t.vals)))
	return t
}

// buildPairs is buildCSR for postings packed key<<32|val (keys below 2^32),
// which sort as plain integers.
func buildPairs(ps []uint64) csr {
	ps, _ = radixSort(ps, nil)
	return pairsOfSorted(ps)
}

// pairsOfSorted is buildPairs of sorted postings.
func pairsOfSorted(ps []uint64) csr {
	ps = slices.Compact(ps)
	var t csr
	t.vals = make([]uint32, 0, len(ps))
	for i, p := range ps {
		if k := p >> 32; i == 0 || k != ps[i-1]>>32 {
			t.keys = append(t.keys, k)
			t.off = append(t.off, uint32(len(t.vals)))
		}
		t.vals = append(t.vals, uint32(p))
	}
	t.off = append(t.off, uint32(len(t.vals)))
	return t
}

func pad8(b []byte) []byte {
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func (t *csr) appendTo(dst []byte) []byte {
	off := t.off
	if len(off) == 0 {
		off = []uint32{0}
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(t.keys)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(t.vals)))
	for _, k := range t.keys {
		dst = binary.LittleEndian.AppendUint64(dst, k)
	}
	for _, o := range off {
		dst = binary.LittleEndian.AppendUint32(dst, o)
	}
	dst = pad8(dst)
	for _, v := range t.vals {
		dst = binary.LittleEndian.AppendUint32(dst, v)
	}
	return pad8(dst)
}

var errTable = errors.New("malformed posting table")

// slice64 and slice32 view b as integers where it lies: b starts 8-byte
// aligned (a section of a mapped file, or a copy made aligned).
func slice64(b []byte, n int) []uint64 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
}

func slice32(b []byte, n int) []uint32 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), n)
}

// aligned returns b, or a copy of it when it does not start 8-byte aligned.
func aligned(b []byte) []byte {
	if len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%8 == 0 {
		return b
	}
	c := make([]byte, len(b), len(b)+8)
	copy(c, b)
	return c
}

// parseCSR reads a table at the start of b (8-byte aligned) and returns
// the bytes after it.
func parseCSR(b []byte) (csr, []byte, error) {
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0 {
		return csr{}, nil, errTable
	}
	if len(b) < 16 {
		return csr{}, nil, errTable
	}
	n, nv := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	if n > uint64(len(b))/8 || nv > uint64(len(b))/4 {
		return csr{}, nil, errTable
	}
	offEnd := 16 + 8*n + 4*(n+1)
	valsAt := (offEnd + 7) &^ 7
	end := (valsAt + 4*nv + 7) &^ 7
	if end > uint64(len(b)) {
		return csr{}, nil, errTable
	}
	t := csr{keys: slice64(b[16:], int(n)), off: slice32(b[16+8*n:], int(n)+1), vals: slice32(b[valsAt:], int(nv))}
	if t.off[n] != uint32(nv) {
		return csr{}, nil, errTable
	}
	// Offsets that go back would make a key's values read as none (get):
	// a damaged table is an error here, not answered around.
	for i := range t.off[:n] {
		if t.off[i] > t.off[i+1] {
			return csr{}, nil, errTable
		}
	}
	return t, b[end:], nil
}

// get returns key's values, nil when none (or when the table lies).
func (t *csr) get(key uint64) []uint32 {
	i, ok := slices.BinarySearch(t.keys, key)
	if !ok {
		return nil
	}
	a, b := t.off[i], t.off[i+1]
	if a > b || int(b) > len(t.vals) {
		return nil
	}
	return t.vals[a:b]
}

// rows is who-took's table: per subject, the identities served it, each
// with the classes served unmasked (a set over the partition's class
// table), the count of such Accesses, the first and the last:
//
//	n u64, nb u64, keys [n]u64, off [n+1]u32, pad to 8, blob [nb]byte, pad to 8
//
// A subject's rows in blob: ident+1 (0: Accesses without the facet) as a
// delta from the previous row's, set, count, first (zig-zag µs from the
// hour), last-first, all varints.
type rows struct {
	keys []uint64
	off  []uint32
	blob []byte
}

// taking is one Access serving a subject to an identity.
type taking struct {
	subject, ident uint32 // ident+1, 0 absent
	set            uint64
	t              int64
}

func buildRows(ts []taking, hour int64) rows {
	ts, _, _, _ = sortTakings(ts, nil, nil, nil)
	return rowsOfSorted(ts, hour)
}

// rowsOfSorted is buildRows of takings sorted by compareTakings.
func rowsOfSorted(ts []taking, hour int64) rows {
	// About 8 bytes a row (tuple delta, classes, count, first, span):
	// sized once rather than copied as it grows.
	r := rows{blob: make([]byte, 0, 8*len(ts))}
	var prev uint32
	for i := 0; i < len(ts); {
		j := i
		for j < len(ts) && ts[j].subject == ts[i].subject && ts[j].ident == ts[i].ident && ts[j].set == ts[i].set {
			j++
		}
		t := ts[i]
		if i == 0 || t.subject != ts[i-1].subject {
			r.keys = append(r.keys, uint64(t.subject))
			r.off = append(r.off, uint32(len(r.blob)))
			prev = 0
		}
		r.blob = binary.AppendUvarint(r.blob, uint64(t.ident-prev))
		r.blob = binary.AppendUvarint(r.blob, t.set)
		r.blob = binary.AppendUvarint(r.blob, uint64(j-i))
		r.blob = binary.AppendVarint(r.blob, t.t-hour)
		r.blob = binary.AppendUvarint(r.blob, uint64(ts[j-1].t-t.t))
		prev = t.ident
		i = j
	}
	r.off = append(r.off, uint32(len(r.blob)))
	return r
}

func (r *rows) appendTo(dst []byte) []byte {
	off := r.off
	if len(off) == 0 {
		off = []uint32{0}
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(r.keys)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(r.blob)))
	for _, k := range r.keys {
		dst = binary.LittleEndian.AppendUint64(dst, k)
	}
	for _, o := range off {
		dst = binary.LittleEndian.AppendUint32(dst, o)
	}
	dst = pad8(dst)
	dst = append(dst, r.blob...)
	return pad8(dst)
}

func parseRows(b []byte) (rows, []byte, error) {
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0 {
		return rows{}, nil, errTable
	}
	if len(b) < 16 {
		return rows{}, nil, errTable
	}
	n, nb := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	if n > uint64(len(b))/8 || nb > uint64(len(b)) {
		return rows{}, nil, errTable
	}
	offEnd := 16 + 8*n + 4*(n+1)
	blobAt := (offEnd + 7) &^ 7
	end := (blobAt + nb + 7) &^ 7
	if end > uint64(len(b)) {
		return rows{}, nil, errTable
	}
	r := rows{keys: slice64(b[16:], int(n)), off: slice32(b[16+8*n:], int(n)+1), blob: b[blobAt : blobAt+nb]}
	if r.off[n] != uint32(nb) {
		return rows{}, nil, errTable
	}
	return r, b[end:], nil
}

// row is one decoded row of a subject.
type row struct {
	ident       uint32 // +1, 0 absent
	set         uint64
	count       int
	first, last int64
}

// get decodes subject's rows; nil when none, an error when malformed (a
// format 3 partition's table damaged).
func (r *rows) get(subject uint32, hour int64) ([]row, error) {
	i, ok := slices.BinarySearch(r.keys, uint64(subject))
	if !ok {
		return nil, nil
	}
	a, b := r.off[i], r.off[i+1]
	if a > b || int(b) > len(r.blob) {
		return nil, fmt.Errorf("subject %d: rows past the table", subject)
	}
	rs := decodeRows(r.blob[a:b], hour)
	if rs == nil && a < b {
		return nil, fmt.Errorf("subject %d: %w", subject, errKeyed)
	}
	return rs, nil
}

// decodeRows decodes one subject's rows; nil when malformed.
func decodeRows(b []byte, hour int64) []row {
	d := decoder{b: b}
	var out []row
	var prev uint64
	for len(d.b) > 0 && d.err == nil {
		prev += d.uvarint()
		x := row{ident: uint32(prev), set: d.uvarint(), count: int(d.uvarint())}
		x.first = hour + d.varint()
		x.last = x.first + int64(d.uvarint())
		out = append(out, x)
	}
	if d.err != nil || prev >= 1<<32 {
		return nil
	}
	return out
}
