package clickhouse

import (
	"encoding/binary"
	"math/bits"

	"github.com/dchest/siphash"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

// RowBinary encoding of the three tables' rows (schema.go's column order).

func putStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func putU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func putU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func putU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func putStrs(b []byte, v []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, s := range v {
		b = putStr(b, s)
	}
	return b
}

// encoder turns Accesses into rows; its hash key keeps pages, look-ups
// and links as keyed hashes, as the local ledger does.
type encoder struct {
	k0, k1 uint64
	names  []string // scratch
	facets []byte   // the Access's facets, encoded
}

func (e *encoder) hash(s string) uint64 {
	if s == "" {
		return 0
	}
	h := siphash.Hash(e.k0, e.k1, []byte(s))
	if h == 0 {
		h = 1
	}
	return h
}

// classNames appends the names of set's bits (indexes into classes).
func classNames(dst []string, classes []string, set inspect.ClassSet) []string {
	for s := uint64(set); s != 0; s &= s - 1 {
		if i := bits.TrailingZeros64(s); i < len(classes) {
			dst = append(dst, classes[i])
		}
	}
	return dst
}

// putAddr appends a as a String, formatted in place: an Identity built
// without identify.Identify (a replay, a test) has no cached strings, and
// Value would allocate two per Access.
func putAddr[T interface{ AppendTo([]byte) []byte }](b []byte, a T, valid bool) []byte {
	if !valid {
		return append(b, 0)
	}
	n := len(b)
	b = a.AppendTo(append(b, 0))
	if l := len(b) - n - 1; l < 0x80 {
		b[n] = byte(l) // a one-byte uvarint
		return b
	}
	s := string(b[n+1:]) // an address with a long zone: rare
	return putStr(b[:n], s)
}

// putFacets appends the identity's facets in schema order (app, account,
// ip, net, fingerprint): the same strings as Identity.Value.
func putFacets(b []byte, id *identify.Identity) []byte {
	b = putStr(b, id.App)
	b = putStr(b, id.Account)
	b = putAddr(b, id.IP, id.IP.IsValid())
	b = putAddr(b, id.Net, id.Net.IsValid())
	return putStr(b, id.Fingerprint)
}

// encode appends acc's rows to b (batch id batch).
func (e *encoder) encode(b *batch, acc *inspect.Access) {
	sec, us := uint32(acc.Time.Unix()), uint32(acc.Time.Nanosecond()/1000)
	// The facets are encoded once and copied into each row that has them.
	e.facets = putFacets(e.facets[:0], &acc.Identity)
	head := func(dst []byte) []byte {
		dst = putU32(dst, sec)
		dst = putU32(dst, us)
		return putU64(dst, b.id)
	}
	// accesses
	a := head(b.rows[tAccesses])
	a = putStr(a, acc.RequestID)
	a = putStr(a, acc.Route)
	a = append(a, e.facets...)
	a = putStr(a, acc.List)
	a = putU64(a, e.hash(acc.Page))
	a = putU64(a, e.hash(acc.Lookup))
	if acc.Unreferenced {
		a = append(a, 1)
	} else {
		a = append(a, 0)
	}
	a = putU16(a, uint16(acc.Status))
	a = putStr(a, acc.Rule)
	a = putStr(a, acc.Facet)
	a = putStrs(a, acc.MaskRules)
	a = putStrs(a, acc.Classes)
	a = binary.AppendUvarint(a, uint64(len(acc.Records)))
	for _, r := range acc.Records {
		a = putStr(a, r.ID)
	}
	a = binary.AppendUvarint(a, uint64(len(acc.Records)))
	for _, r := range acc.Records {
		a = putU64(a, uint64(r.Classes))
	}
	a = binary.AppendUvarint(a, uint64(len(acc.Records)))
	for _, r := range acc.Records {
		a = putU64(a, uint64(r.Masked))
	}
	a = putStrs(a, acc.Authors)
	a = binary.AppendUvarint(a, uint64(len(acc.Links)))
	for _, l := range acc.Links {
		a = putU64(a, e.hash(l))
	}
	b.rows[tAccesses] = a
	b.count[tAccesses]++

	// takes: one row per record served
	t := b.rows[tTakes]
	for _, r := range acc.Records {
		served, masked := r.Classes&^r.Masked, r.Classes&r.Masked
		t = putStr(t, r.ID)
		t = head(t)
		t = putStr(t, acc.RequestID)
		t = append(t, e.facets...)
		e.names = classNames(e.names[:0], acc.Classes, served)
		t = putStrs(t, e.names)
		e.names = classNames(e.names[:0], acc.Classes, masked)
		t = putStrs(t, e.names)
		b.count[tTakes]++
	}
	b.rows[tTakes] = t

	// views: one row per piece of content
	v := b.rows[tViews]
	for _, au := range acc.Authors {
		v = putStr(v, au)
		v = head(v)
		v = append(v, e.facets...)
		b.count[tViews]++
	}
	b.rows[tViews] = v
	b.n++
}
