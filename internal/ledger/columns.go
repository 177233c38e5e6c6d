package ledger

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Format 4 keeps a partition's Accesses as columns, one per kind of field,
// each compressed on its own (zstd): a column holds values alike (times
// one after another, identities, record ids), which compress far better
// than the fields of one Access side by side.
//
//	colTime     the time, delta from the previous Access's (zig-zag µs;
//	            the first from the hour)
//	colReqID    the request id: 1, then the prefix (zig-zag delta from the
//	            previous id's) and the counter (zig-zag delta from the
//	            last counter of that prefix) when it is warden's (8 hex
//	            digits of a per-process prefix and 16 of a counter,
//	            pipeline.go); else 0, its length, its bytes
//	colMisc     flags, route, status, rule, facet, mask rules, classes
//	            and the counts of records, authors and links (uvarints: a
//	            few names, repeated)
//	colTuple    the identity: its tuple (nsTuple, every facet at once)
//	colList     the list (+1, 0 none)
//	colRecID    each record's id
//	colRecClass each record's classes and masked classes
//	colAuthor   each author
//	colHash     page, look-up and link hashes (8 bytes each)
//
// The section is: the count of Accesses, per column its raw and
// compressed lengths (uvarints), then the compressed columns.
const (
	colTime = iota
	colReqID
	colMisc
	colTuple
	colList
	colRecID
	colRecClass
	colAuthor
	colHash
	numCols
)

// reqIDParts splits warden's request ids (24 lower-case hex digits: a
// per-process prefix of 8, a counter of 16).
func reqIDParts(id string) (prefix uint32, counter uint64, ok bool) {
	b, ok := decodeReqID(id)
	if !ok {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b[:4]), binary.BigEndian.Uint64(b[4:]), true
}

func reqIDOf(prefix uint32, counter uint64) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], prefix)
	binary.BigEndian.PutUint64(b[4:], counter)
	return hex.EncodeToString(b[:])
}

// counters is the last counter of each request id prefix (a ledger sees
// one prefix per gateway process: few).
type counters struct {
	prefix []uint32
	last   []uint64
}

func (c *counters) at(prefix uint32) *uint64 {
	for i, p := range c.prefix {
		if p == prefix {
			return &c.last[i]
		}
	}
	c.prefix, c.last = append(c.prefix, prefix), append(c.last, 0)
	return &c.last[len(c.last)-1]
}

// appendColumns encodes entries (hour: unix seconds; tuples[i] entry i's
// identity) as the Accesses section after dst.
func appendColumns(dst []byte, entries []entry, tuples []uint32, hour int64, enc *zstd.Encoder) []byte {
	var c [numCols][]byte
	u := func(col int, v uint64) { c[col] = binary.AppendUvarint(c[col], v) }
	prevT := hour * 1e6
	var prevPrefix uint32
	var ctr counters
	for i := range entries {
		e := &entries[i]
		c[colTime] = binary.AppendVarint(c[colTime], e.t-prevT)
		prevT = e.t
		if pre, n, ok := reqIDParts(e.reqID); ok {
			c[colReqID] = append(c[colReqID], 1)
			c[colReqID] = binary.AppendVarint(c[colReqID], int64(pre)-int64(prevPrefix))
			last := ctr.at(pre)
			c[colReqID] = binary.AppendVarint(c[colReqID], int64(n-*last))
			prevPrefix, *last = pre, n
		} else {
			c[colReqID] = appendReqID(c[colReqID], e.reqID) // not of warden's form: kept as it is
		}
		u(colTuple, uint64(tuples[i]))
		c[colMisc] = append(c[colMisc], e.flags())
		u(colMisc, uint64(e.route))
		u(colMisc, uint64(e.status))
		u(colMisc, uint64(e.rule))
		u(colMisc, uint64(e.facet))
		c[colMisc] = appendUints(c[colMisc], e.masks)
		c[colMisc] = appendUints(c[colMisc], e.classes)
		u(colMisc, uint64(len(e.recs)))
		u(colMisc, uint64(len(e.authors)))
		u(colMisc, uint64(len(e.links)))
		u(colList, uint64(e.list))
		if e.page != 0 {
			c[colHash] = binary.LittleEndian.AppendUint64(c[colHash], e.page)
		}
		if e.lookup != 0 {
			c[colHash] = binary.LittleEndian.AppendUint64(c[colHash], e.lookup)
		}
		for _, r := range e.recs {
			u(colRecID, uint64(r.id))
			u(colRecClass, r.classes)
			u(colRecClass, r.masked)
		}
		for _, a := range e.authors {
			u(colAuthor, uint64(a))
		}
		for _, l := range e.links {
			c[colHash] = binary.LittleEndian.AppendUint64(c[colHash], l)
		}
	}
	var comp [numCols][]byte
	for i := range c {
		if len(c[i]) > 0 {
			comp[i] = enc.EncodeAll(c[i], nil)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for i := range c {
		dst = binary.AppendUvarint(dst, uint64(len(c[i])))
		dst = binary.AppendUvarint(dst, uint64(len(comp[i])))
	}
	for i := range comp {
		dst = append(dst, comp[i]...)
	}
	return dst
}

// columnDir is an Accesses section's directory: its count of Accesses
// and each column's raw and compressed lengths; size is its length in
// bytes (format 5's CRC32C covers them).
type columnDir struct {
	n         uint64
	raw, comp [numCols]uint64
	size      int
}

// parseColumnDir reads the directory at the start of an Accesses
// section; the compressed columns follow it.
func parseColumnDir(b []byte) (columnDir, error) {
	d := decoder{b: b}
	var c columnDir
	c.n = d.uvarint()
	for i := range c.raw {
		c.raw[i], c.comp[i] = d.uvarint(), d.uvarint()
	}
	c.size = len(b) - len(d.b)
	return c, d.err
}

// parseColumns decodes an Accesses section against the dictionary sizes
// of the partition and the shared dictionary's tuples; it never panics on
// any input.
func parseColumns(b []byte, hour int64, sizes *[nsCount]int, tuples *strtab, dec *zstd.Decoder) ([]entry, error) {
	cd, err := parseColumnDir(b)
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, r := range cd.raw {
		total += r
	}
	if total > maxSegRaw {
		return nil, fmt.Errorf("Accesses of %d bytes are past the bound", total)
	}
	d := decoder{b: b[cd.size:]}
	var cols [numCols]decoder
	for i := range cols {
		z := d.bytes(int(min(cd.comp[i], uint64(len(d.b))+1)))
		if d.err != nil {
			return nil, errShort
		}
		if len(z) == 0 {
			if cd.raw[i] != 0 {
				return nil, fmt.Errorf("column %d: empty, said %d bytes", i, cd.raw[i])
			}
			continue
		}
		raw, err := decodeSized(dec, z, cd.raw[i], nil)
		if err != nil {
			return nil, fmt.Errorf("column %d: %w", i, err)
		}
		cols[i].b = raw
	}
	if len(d.b) != 0 {
		return nil, errTrailing
	}
	n := cd.n
	if n > uint64(len(cols[colTime].b)) || n > uint64(len(cols[colMisc].b)) {
		return nil, errShort
	}
	entries := make([]entry, n)
	prevT := hour * 1e6
	var prevPrefix uint32
	var ctr counters
	m := &cols[colMisc]
	for i := range entries {
		e := &entries[i]
		e.t = prevT + cols[colTime].varint()
		prevT = e.t
		rq := &cols[colReqID]
		switch rq.byte() {
		case 0:
			e.reqID = string(rq.bytes(int(rq.byte())))
		case 1:
			pre := uint32(int64(prevPrefix) + rq.varint())
			last := ctr.at(pre)
			*last += uint64(rq.varint())
			prevPrefix = pre
			e.reqID = reqIDOf(pre, *last)
		default:
			rq.fail(errors.New("bad request id form"))
		}
		flags := m.byte()
		e.unref = flags&flagUnref != 0
		e.ageRank = flags >> flagAgeShift
		if tp := cols[colTuple].ref(min(sizes[nsTuple], tuples.len()), false); cols[colTuple].err == nil {
			fs, ok := parseTuple(tuples.at(tp))
			for f, v := range fs {
				ok = ok && v <= uint32(sizes[nsFacet+f])
			}
			if !ok {
				return nil, fmt.Errorf("access %d: tuple %d is not an identity of this partition", i, tp)
			}
			e.facets = fs
		}
		e.route = m.ref(sizes[nsName], true)
		m.verdict(e, sizes)
		// Counts are checked against the columns they read below.
		nrec, nauth, nlink := int(min(m.uvarint(), 1<<30)), int(min(m.uvarint(), 1<<30)), int(min(m.uvarint(), 1<<30))
		e.list = cols[colList].ref(sizes[nsID], true)
		if flags&flagPage != 0 {
			e.page = cols[colHash].u64()
		}
		if flags&flagLookup != 0 {
			e.lookup = cols[colHash].u64()
		}
		if nrec > 0 && nrec <= len(cols[colRecID].b) {
			e.recs = make([]rec, nrec)
			for k := range e.recs {
				e.recs[k] = rec{id: cols[colRecID].ref(sizes[nsID], false), classes: cols[colRecClass].uvarint(), masked: cols[colRecClass].uvarint()}
			}
		} else if nrec > 0 {
			return nil, fmt.Errorf("access %d: %w", i, errShort)
		}
		if nauth > 0 && nauth <= len(cols[colAuthor].b) {
			e.authors = make([]uint32, nauth)
			for k := range e.authors {
				e.authors[k] = cols[colAuthor].ref(sizes[nsID], false)
			}
		} else if nauth > 0 {
			return nil, fmt.Errorf("access %d: %w", i, errShort)
		}
		if nlink > 0 && nlink <= len(cols[colHash].b)/8 {
			e.links = make([]uint64, nlink)
			for k := range e.links {
				e.links[k] = cols[colHash].u64()
			}
		} else if nlink > 0 {
			return nil, fmt.Errorf("access %d: %w", i, errShort)
		}
		for k := range cols {
			if cols[k].err != nil {
				return nil, fmt.Errorf("access %d: column %d: %w", i, k, cols[k].err)
			}
		}
	}
	for k := range cols {
		if len(cols[k].b) != 0 {
			return nil, fmt.Errorf("column %d: %w", k, errTrailing)
		}
	}
	return entries, nil
}

// column decompresses column col of an Accesses section alone, and
// returns it with the section's count of Accesses; nil when the column is
// empty. An error when the section does not parse.
func column(b []byte, dec *zstd.Decoder, col int) (raw []byte, n uint64, err error) {
	cd, err := parseColumnDir(b)
	if err != nil {
		return nil, 0, err
	}
	var skip uint64
	for i := range col {
		skip += cd.comp[i]
	}
	data := b[cd.size:]
	if skip > uint64(len(data)) || cd.comp[col] > uint64(len(data))-skip || cd.raw[col] > maxSegRaw {
		return nil, 0, errShort
	}
	z := data[skip : skip+cd.comp[col]]
	if len(z) == 0 {
		return nil, cd.n, nil
	}
	raw, err = decodeSized(dec, z, cd.raw[col], nil)
	if err != nil {
		return nil, 0, fmt.Errorf("column %d: %w", col, err)
	}
	return raw, cd.n, nil
}

// hasReqID reports whether an Access of an Accesses section has request
// id id, decompressing the request id column alone (about 2 bytes an
// Access of warden's ids, where the Accesses decoded take about 300), so
// that explain decodes whole only the hour that holds the id. It compares
// as parseColumns decodes: warden's ids by prefix and counter, others
// byte for byte. An error when the column does not parse.
func hasReqID(b []byte, dec *zstd.Decoder, id string) (bool, error) {
	raw, n, err := column(b, dec, colReqID)
	if err != nil {
		return false, err
	}
	wantPre, wantCtr, warden := reqIDParts(id)
	c := decoder{b: raw}
	var prevPrefix uint32
	var ctr counters
	for range n {
		switch c.byte() {
		case 0:
			s := c.bytes(int(c.byte()))
			if c.err == nil && !warden && string(s) == id {
				return true, nil
			}
		case 1:
			pre := uint32(int64(prevPrefix) + c.varint())
			last := ctr.at(pre)
			*last += uint64(c.varint())
			prevPrefix = pre
			if c.err == nil && warden && pre == wantPre && *last == wantCtr {
				return true, nil
			}
		default:
			c.fail(errors.New("bad request id form"))
		}
		if c.err != nil {
			return false, fmt.Errorf("column %d: %w", colReqID, c.err)
		}
	}
	return false, nil
}

// anyTuple reports whether an Access of an Accesses section has an
// identity (its tuple) match accepts, decompressing the identity column
// alone: about 3 bytes an Access, where the Accesses decoded take about
// 300. An error when the section does not parse.
func anyTuple(b []byte, dec *zstd.Decoder, match func(t uint64) bool) (bool, error) {
	raw, n, err := column(b, dec, colTuple)
	if err != nil {
		return false, err
	}
	c := decoder{b: raw}
	for range n {
		t := c.uvarint()
		if c.err != nil {
			return false, c.err
		}
		if match(t) {
			return true, nil
		}
	}
	return false, nil
}

// eachAuthored calls fn with the number (its place in the section), the
// time, the identity (tuple) and the authors of each Access of an
// Accesses section that has authors, decompressing the time, identity,
// misc and author columns alone (reach over an hour a window cuts that
// has no author index, authored.go: about 8 bytes an Access, where the
// Accesses decoded take about 300), and returns the count of Accesses.
// The misc fields other than the count of authors are skipped byte by
// byte, not decoded. authors is reused between calls. An error when a
// column does not parse.
func eachAuthored(b []byte, hour int64, dec *zstd.Decoder, fn func(i uint32, t int64, tuple uint64, authors []uint32)) (uint64, error) {
	var cols [4][]byte
	var n uint64
	for i, col := range []int{colTime, colTuple, colMisc, colAuthor} {
		raw, count, err := column(b, dec, col)
		if err != nil {
			return 0, err
		}
		cols[i], n = raw, count
	}
	if n >= 1<<32 {
		return 0, fmt.Errorf("%d Accesses", n)
	}
	tb, ub, mb, ab := cols[0], cols[1], cols[2], cols[3]
	uv := func(p *[]byte) (uint64, bool) {
		v, k := binary.Uvarint(*p)
		if k <= 0 {
			return 0, false
		}
		*p = (*p)[k:]
		return v, true
	}
	errMisc := fmt.Errorf("column %d: %w", colMisc, errShort)
	var authors []uint32
	t := hour * 1e6
	for i := range uint32(n) {
		dt, k := binary.Varint(tb)
		if k <= 0 {
			return 0, fmt.Errorf("column %d: %w", colTime, errShort)
		}
		tb, t = tb[k:], t+dt
		tuple, ok := uv(&ub)
		if !ok {
			return 0, fmt.Errorf("column %d: %w", colTuple, errShort)
		}
		// flags (a byte), route, status, rule, facet
		if len(mb) == 0 || mb[0] >= 0x80 || !skip1(&mb, 5) {
			return 0, errMisc
		}
		for range 2 { // mask rules, classes: a count, then the names
			c, ok := uv(&mb)
			if !ok || c > uint64(len(mb)) || !skip1(&mb, int(c)) {
				return 0, errMisc
			}
		}
		if !skip1(&mb, 1) { // records
			return 0, errMisc
		}
		nauth, ok := uv(&mb)
		if !ok || !skip1(&mb, 1) || nauth > uint64(len(ab)) { // links
			return 0, errMisc
		}
		authors = authors[:0]
		for range nauth {
			a, ok := uv(&ab)
			if !ok || a >= 1<<32 {
				return 0, fmt.Errorf("column %d: %w", colAuthor, errShort)
			}
			authors = append(authors, uint32(a))
		}
		if len(authors) > 0 {
			fn(i, t, tuple, authors)
		}
	}
	return n, nil
}

// skip1 passes k uvarints of *p (a flags byte is below 0x80 too); false
// when *p ends first.
func skip1(p *[]byte, k int) bool {
	b := *p
	for ; k > 0; k-- {
		for {
			if len(b) == 0 {
				return false
			}
			c := b[0]
			b = b[1:]
			if c < 0x80 {
				break
			}
		}
	}
	*p = b
	return true
}
