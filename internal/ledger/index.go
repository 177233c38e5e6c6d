package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// Bitmap families of a partition's index, each per facet.
const (
	famTook    = iota // ident<<32|class -> subjects served (class 0: any record, else name+1)
	famMasked         // ident<<32|class -> subjects whose class was masked
	famTakers         // subject<<32|class -> identities served it
	famViewers        // author -> identities served their content
	famLists          // ident -> lists fetched
	famCount
)

// index is one partition's bitmaps over its dictionary's integers.
type index struct {
	fam   [famCount][NumFacets]map[uint64]*roaring.Bitmap
	spans [NumFacets]map[uint32][2]int64 // ident -> first, last Access (unix µs)
	impr  map[uint32]uint64              // author -> pieces of content served
}

func newIndex() *index {
	x := &index{impr: map[uint32]uint64{}}
	for f := range x.fam {
		for g := range x.fam[f] {
			x.fam[f][g] = map[uint64]*roaring.Bitmap{}
		}
	}
	for g := range x.spans {
		x.spans[g] = map[uint32][2]int64{}
	}
	return x
}

func (x *index) add(fam, f int, key uint64, v uint32) {
	m := x.fam[fam][f]
	b := m[key]
	if b == nil {
		b = roaring.New()
		m[key] = b
	}
	b.Add(v)
}

// get returns the bitmap under key, nil when none.
func (x *index) get(fam, f int, key uint64) *roaring.Bitmap { return x.fam[fam][f][key] }

// addEntry indexes one Access.
func (x *index) addEntry(e *entry) {
	for _, a := range e.authors {
		x.impr[a]++
	}
	for f, v := range e.facets {
		if v == 0 {
			continue
		}
		ident := v - 1
		sp, ok := x.spans[f][ident]
		if !ok {
			sp = [2]int64{e.t, e.t}
		}
		sp[0], sp[1] = min(sp[0], e.t), max(sp[1], e.t)
		x.spans[f][ident] = sp
		for _, r := range e.recs {
			x.add(famTook, f, uint64(ident)<<32, r.id)
			x.add(famTakers, f, uint64(r.id)<<32, ident)
			served, masked := r.classes&^r.masked, r.classes&r.masked
			for s := served; s != 0; s &= s - 1 {
				if c, ok := classAt(e, bits.TrailingZeros64(s)); ok {
					x.add(famTook, f, uint64(ident)<<32|uint64(c), r.id)
					x.add(famTakers, f, uint64(r.id)<<32|uint64(c), ident)
				}
			}
			for s := masked; s != 0; s &= s - 1 {
				if c, ok := classAt(e, bits.TrailingZeros64(s)); ok {
					x.add(famMasked, f, uint64(ident)<<32|uint64(c), r.id)
				}
			}
		}
		for _, a := range e.authors {
			x.add(famViewers, f, uint64(a), ident)
		}
		if e.list != 0 && e.status < 400 { // a refusal fetched nothing
			x.add(famLists, f, uint64(ident), e.list-1)
		}
	}
}

// classAt is the class key (name+1) of bit i of e's classes.
func classAt(e *entry, i int) (uint32, bool) {
	if i >= len(e.classes) {
		return 0, false
	}
	return e.classes[i] + 1, true
}

// appendIndex serialises x deterministically (keys in order), so that a
// verifier can rebuild it from the Accesses and compare bytes.
func appendIndex(dst []byte, x *index) []byte {
	for fam := range x.fam {
		for f := range x.fam[fam] {
			m := x.fam[fam][f]
			keys := make([]uint64, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			dst = binary.AppendUvarint(dst, uint64(len(keys)))
			for _, k := range keys {
				b := m[k]
				b.RunOptimize()
				bb, _ := b.ToBytes()
				dst = binary.AppendUvarint(dst, k)
				dst = binary.AppendUvarint(dst, uint64(len(bb)))
				dst = append(dst, bb...)
			}
		}
	}
	for f := range x.spans {
		m := x.spans[f]
		keys := make([]uint32, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = binary.AppendUvarint(dst, uint64(len(keys)))
		for _, k := range keys {
			dst = binary.AppendUvarint(dst, uint64(k))
			dst = binary.AppendVarint(dst, m[k][0])
			dst = binary.AppendVarint(dst, m[k][1])
		}
	}
	keys := make([]uint32, 0, len(x.impr))
	for k := range x.impr {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = binary.AppendUvarint(dst, uint64(k))
		dst = binary.AppendUvarint(dst, x.impr[k])
	}
	return dst
}

// readIndex parses what appendIndex wrote. A malformed bitmap is an
// error, never a panic (roaring's parser is guarded).
func readIndex(b []byte) (x *index, err error) {
	defer func() {
		if r := recover(); r != nil {
			x, err = nil, fmt.Errorf("index: malformed bitmap (%v)", r)
		}
	}()
	x = newIndex()
	d := decoder{b: b}
	for fam := range x.fam {
		for f := range x.fam[fam] {
			n := d.count(2)
			for i := 0; i < n && d.err == nil; i++ {
				k := d.uvarint()
				l := d.count(1)
				bb := d.bytes(l)
				if d.err != nil {
					break
				}
				bm := roaring.New()
				if err := bm.UnmarshalBinary(bb); err != nil {
					return nil, fmt.Errorf("index: bitmap: %w", err)
				}
				x.fam[fam][f][k] = bm
			}
		}
	}
	for f := range x.spans {
		n := d.count(3)
		for i := 0; i < n && d.err == nil; i++ {
			k := uint32(d.uvarint())
			x.spans[f][k] = [2]int64{d.varint(), d.varint()}
		}
	}
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		k := uint32(d.uvarint())
		x.impr[k] = d.uvarint()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(errors.New("trailing bytes"))
	}
	if d.err != nil {
		return nil, fmt.Errorf("index: %w", d.err)
	}
	return x, nil
}
