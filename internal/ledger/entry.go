package ledger

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/warden-gw/warden/internal/identify"
)

// NumFacets is the number of identity facets; Entry.Identity is indexed by
// facet-1 (identify.FacetApp is 0).
const NumFacets = len(identify.Facets)

// Entry is one Access as the ledger takes it: ids and names only.
type Entry struct {
	Time      time.Time
	RequestID string
	Route     string
	Identity  [NumFacets]string // by facet-1: app, account, ip, net, fingerprint; "" absent
	// List is whose list was served, Page which page; Lookup the id a
	// look-up asked for. Page and Lookup are kept as keyed hashes only.
	List, Page, Lookup string
	Unreferenced       bool
	Status             int
	Rule, Facet        string // a refusal's rule and facet
	MaskRules          []string
	Classes            []string // the route's classes; Record bits index it
	Records            []Record
	Authors            []string // one per piece of content served
	Links              []string // kept as keyed hashes only
	// AgeRank is the account's age rank when the budgets decided
	// (inspect.Access.AgeRank: which account_age tier each applied), 0
	// not known (a ledger written before it was kept, no tiers, or no
	// budget asked). Kept in 5 bits of the flag byte: 1 to 31.
	AgeRank uint8
}

// Who is the Access's identity as far as the ledger keeps it: each
// facet's value, the ip and net parsed (left unset when they do not
// parse). What replay and explain decide rules on.
func (e *Entry) Who() identify.Identity {
	v := func(f identify.Facet) string { return e.Identity[f-1] }
	id := identify.Identity{App: v(identify.FacetApp), Account: v(identify.FacetAccount), Fingerprint: v(identify.FacetFingerprint)}
	if a, err := netip.ParseAddr(v(identify.FacetIP)); err == nil {
		id.IP = a
	}
	if p, err := netip.ParsePrefix(v(identify.FacetNet)); err == nil {
		id.Net = p
	}
	return id
}

// Record is one record served: the classes present and those masked.
type Record struct {
	ID              string
	Classes, Masked uint64
}

// Namespaces of a partition's dictionary.
const (
	nsID    = 0 // platform ids: records, authors, lists
	nsFacet = 1 // nsFacet+f-1 for facet f
	nsName  = nsFacet + NumFacets
	// nsTuple (format 4): an identity as a whole, the facets of an Access
	// (tupleKey), so that format 4's index names one integer per identity
	// where format 3 named one per facet. Only the sealer adds to it.
	nsTuple   = nsName + 1
	nsCount   = nsTuple + 1
	nsCountV3 = nsTuple // namespaces a format 3 partition counts
)

// entry is an Entry as stored: integers of the partition's dictionary
// (plus one where 0 means absent), hashes for the values kept hashed.
type entry struct {
	t       int64 // unix microseconds
	reqID   string
	route   uint32 // name+1
	facets  [NumFacets]uint32
	list    uint32 // id+1
	page    uint64 // hash, 0 absent
	lookup  uint64
	unref   bool
	ageRank uint8 // 0-31 (flagAgeShift)
	status  uint16
	rule    uint32 // name+1
	facet   uint32 // name+1
	masks   []uint32
	classes []uint32
	recs    []rec
	authors []uint32
	links   []uint64
}

type rec struct {
	id              uint32
	classes, masked uint64
}

const (
	flagUnref  = 1 << iota
	flagPage   // page hash follows
	flagLookup // lookup hash follows
	// The flag byte's top 5 bits hold the Access's age rank (0: not
	// known, as every Access written before they did).
	flagAgeShift = 3
	maxAgeRank   = 1<<(8-flagAgeShift) - 1
)

// flags is e's flag byte.
func (e *entry) flags() byte {
	var flags byte
	if e.unref {
		flags |= flagUnref
	}
	if e.page != 0 {
		flags |= flagPage
	}
	if e.lookup != 0 {
		flags |= flagLookup
	}
	flags |= min(e.ageRank, maxAgeRank) << flagAgeShift
	return flags
}

// appendEntry encodes e after dst; hour is the partition's start (unix
// microseconds), times are kept relative to it.
func appendEntry(dst []byte, e *entry, hour int64) []byte {
	dst = binary.AppendVarint(dst, e.t-hour)
	dst = appendReqID(dst, e.reqID)
	dst = append(dst, e.flags())
	dst = binary.AppendUvarint(dst, uint64(e.route))
	var present byte
	for f, v := range e.facets {
		if v != 0 {
			present |= 1 << f
		}
	}
	dst = append(dst, present)
	for _, v := range e.facets {
		if v != 0 {
			dst = binary.AppendUvarint(dst, uint64(v-1))
		}
	}
	dst = binary.AppendUvarint(dst, uint64(e.list))
	if e.page != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, e.page)
	}
	if e.lookup != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, e.lookup)
	}
	dst = binary.AppendUvarint(dst, uint64(e.status))
	dst = binary.AppendUvarint(dst, uint64(e.rule))
	dst = binary.AppendUvarint(dst, uint64(e.facet))
	dst = appendUints(dst, e.masks)
	dst = appendUints(dst, e.classes)
	dst = binary.AppendUvarint(dst, uint64(len(e.recs)))
	for _, r := range e.recs {
		dst = binary.AppendUvarint(dst, uint64(r.id))
		dst = binary.AppendUvarint(dst, r.classes)
		dst = binary.AppendUvarint(dst, r.masked)
	}
	dst = appendUints(dst, e.authors)
	dst = binary.AppendUvarint(dst, uint64(len(e.links)))
	for _, l := range e.links {
		dst = binary.LittleEndian.AppendUint64(dst, l)
	}
	return dst
}

func appendUints(dst []byte, v []uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	for _, x := range v {
		dst = binary.AppendUvarint(dst, uint64(x))
	}
	return dst
}

// appendReqID packs warden's request ids (24 lower-case hex digits) in 12
// bytes; any other id is kept as it is, up to 255 bytes.
func appendReqID(dst []byte, id string) []byte {
	if b, ok := decodeReqID(id); ok {
		dst = append(dst, 1)
		return append(dst, b[:]...)
	}
	if len(id) > 255 {
		id = id[:255]
	}
	dst = append(dst, 0, byte(len(id)))
	return append(dst, id...)
}

// decodeReqID is the 12 bytes of one of warden's request ids (24
// lower-case hex digits), checked and decoded in one pass (hex.Decode
// wants a []byte: a copy, after a pass of its own to check the digits).
func decodeReqID(id string) (b [12]byte, ok bool) {
	if len(id) != 24 {
		return b, false
	}
	bad := byte(0)
	for i := range b {
		hi, lo := unhex[id[2*i]], unhex[id[2*i+1]]
		bad |= hi | lo
		b[i] = hi<<4 | lo
	}
	return b, bad&0x10 == 0
}

// unhex is a lower-case hex digit's value, 0x10 for any other byte.
var unhex = func() (t [256]byte) {
	for i := range t {
		switch {
		case '0' <= i && i <= '9':
			t[i] = byte(i - '0')
		case 'a' <= i && i <= 'f':
			t[i] = byte(i - 'a' + 10)
		default:
			t[i] = 0x10
		}
	}
	return t
}()

// decoder reads an encoded entry, checking every id against the sizes of
// the dictionary it refers to. It never panics on any input.
type decoder struct {
	b   []byte
	err error
	a   *entryArena // where an entry's slices and request id go; nil: allocated each
}

// entryArena hands out the slices and request ids of a log's entries from
// a few large allocations, for the sealer: at the density an hour
// holds 139,000 Accesses, each decoded with four or five small
// allocations (its request id, classes, records, authors) that the
// collector then marks one by one and frees with the hour. A chunk stays
// alive while any entry cut from it does: only for entries dropped
// together (a partition being sealed), never for what a query returns.
// The sealer keeps its arena from one seal to the next (reset): see
// sealScratch.
type entryArena struct {
	u32  chunks[uint32]
	recs chunks[rec]
	str  chunks[byte]
}

// reset makes every chunk cut from a free again: the entries cut from
// them must be dropped first.
func (a *entryArena) reset() {
	a.u32.reset()
	a.recs.reset()
	a.str.reset()
}

const arenaChunk = 1 << 16 // elements of a chunk

// chunks are an arena's chunks of one type: the one being cut, those cut
// full since the last reset, and spare ones to cut again. Their types hold
// no pointers, so a spare chunk keeps nothing else alive.
type chunks[T any] struct {
	cur   []T
	full  [][]T
	spare [][]T
}

// cut returns the next n elements of c, starting a new chunk (a spare
// one when there is) when the one being cut is full. The elements are
// not zeroed: callers write every one.
func cut[T any](c *chunks[T], n int) []T {
	if len(c.cur)+n > cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		if k := len(c.spare); k > 0 && n <= arenaChunk {
			c.cur, c.spare = c.spare[k-1][:0], c.spare[:k-1]
		} else {
			c.cur = make([]T, 0, max(arenaChunk, n))
		}
	}
	s := c.cur
	c.cur = s[:len(s)+n]
	return s[len(s) : len(s)+n : len(s)+n]
}

func (c *chunks[T]) reset() {
	if c.cur != nil {
		c.full = append(c.full, c.cur)
	}
	for _, ch := range c.full {
		if cap(ch) == arenaChunk { // not an outsize one
			c.spare = append(c.spare, ch[:0])
		}
	}
	clear(c.full)
	c.full, c.cur = c.full[:0], nil
}

func (d *decoder) uint32s(n int) []uint32 {
	if d.a == nil {
		return make([]uint32, n)
	}
	return cut(&d.a.u32, n)
}

func (d *decoder) recs(n int) []rec {
	if d.a == nil {
		return make([]rec, n)
	}
	return cut(&d.a.recs, n)
}

// str is b as a string.
func (d *decoder) str(b []byte) string {
	if d.a == nil || len(b) == 0 {
		return string(b)
	}
	s := cut(&d.a.str, len(b))
	copy(s, b)
	return unsafe.String(unsafe.SliceData(s), len(s))
}

// hexID is b in hex, as a string.
func (d *decoder) hexID(b []byte) string {
	if d.a == nil {
		return hex.EncodeToString(b)
	}
	s := cut(&d.a.str, hex.EncodedLen(len(b)))
	hex.Encode(s, b)
	return unsafe.String(unsafe.SliceData(s), len(s))
}

var errShort = errors.New("entry cut short")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	b := d.bytes(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// ref reads an id below max (plus one when plus, 0 meaning none).
func (d *decoder) ref(max int, plus bool) uint32 {
	v := d.uvarint()
	lim := uint64(max)
	if plus {
		lim++
	}
	if v >= lim {
		d.fail(fmt.Errorf("id %d outside the dictionary (%d entries)", v, max))
		return 0
	}
	return uint32(v)
}

// count reads a list length that the remaining bytes can hold (each item
// at least min bytes).
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/min) {
		d.fail(errShort)
		return 0
	}
	return int(v)
}

func (d *decoder) refs(max int) []uint32 {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := d.uint32s(n)
	for i := range out {
		out[i] = d.ref(max, false)
	}
	return out
}

// verdict reads an Access's status, rule and facet of a refusal, mask
// rules and classes.
func (d *decoder) verdict(e *entry, sizes *[nsCount]int) {
	st := d.uvarint()
	if st > 999 {
		d.fail(errors.New("bad status"))
	}
	e.status = uint16(st)
	e.rule = d.ref(sizes[nsName], true)
	e.facet = d.ref(sizes[nsName], true)
	e.masks = d.refs(sizes[nsName])
	e.classes = d.refs(sizes[nsName])
}

// decodeEntry decodes body into e; sizes are the dictionary's sizes per
// namespace at this point of the log.
func decodeEntry(body []byte, hour int64, sizes *[nsCount]int, e *entry, a *entryArena) error {
	d := decoder{b: body, a: a}
	*e = entry{}
	e.t = hour + d.varint()
	switch d.byte() {
	case 0:
		n := int(d.byte())
		e.reqID = d.str(d.bytes(n))
	case 1:
		if b := d.bytes(12); b != nil {
			e.reqID = d.hexID(b)
		}
	default:
		d.fail(errors.New("bad request id form"))
	}
	flags := d.byte()
	e.unref = flags&flagUnref != 0
	e.ageRank = flags >> flagAgeShift
	e.route = d.ref(sizes[nsName], true)
	present := d.byte()
	if present>>NumFacets != 0 {
		d.fail(errors.New("bad facet set"))
	}
	for f := range e.facets {
		if present&(1<<f) != 0 {
			e.facets[f] = d.ref(sizes[nsFacet+f], false) + 1
		}
	}
	e.list = d.ref(sizes[nsID], true)
	if flags&flagPage != 0 {
		e.page = d.u64()
	}
	if flags&flagLookup != 0 {
		e.lookup = d.u64()
	}
	d.verdict(e, sizes)
	if n := d.count(3); n > 0 {
		e.recs = d.recs(n)
		for i := range e.recs {
			e.recs[i] = rec{id: d.ref(sizes[nsID], false), classes: d.uvarint(), masked: d.uvarint()}
		}
	}
	e.authors = d.refs(sizes[nsID])
	if n := d.count(8); n > 0 {
		e.links = make([]uint64, n)
		for i := range e.links {
			e.links[i] = d.u64()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(errors.New("trailing bytes"))
	}
	return d.err
}
