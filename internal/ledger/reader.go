package ledger

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/klauspost/compress/zstd"
)

// Window is a span of time, both ends included; a zero end is open.
type Window struct {
	From, To time.Time
}

func (w Window) lo() int64 {
	if w.From.IsZero() {
		return -1 << 63
	}
	return w.From.UnixMicro()
}

func (w Window) hi() int64 {
	if w.To.IsZero() {
		return 1<<63 - 1
	}
	return w.To.UnixMicro()
}

// has reports whether t (unix µs) is in the window.
func (w Window) has(t int64) bool { return t >= w.lo() && t <= w.hi() }

// covers reports whether every Access of p is in the window, so that its
// index answers for it.
func (w Window) covers(p *partition) bool { return p.minT >= w.lo() && p.maxT <= w.hi() }

// Reader answers queries over the partitions of a window. It reads the
// directory a running gateway writes: an open log is read up to its last
// whole frame.
type Reader struct {
	dir   string
	win   Window
	parts []*partition
	glob  [nsCount]interner
	gl    map[*partition]*[nsCount][]uint32 // local -> global+1
	// viewNS is the namespace of the identities Viewers last returned.
	viewNS int
}

// interner gives strings integers that hold across partitions.
type interner struct {
	ids   map[string]uint32
	names []string
}

func (in *interner) id(s string) uint32 {
	if in.ids == nil {
		in.ids = map[string]uint32{}
	}
	if v, ok := in.ids[s]; ok {
		return v
	}
	v := uint32(len(in.names))
	in.ids[s] = v
	in.names = append(in.names, s)
	return v
}

// OpenReader loads the partitions of dir that may hold Accesses of win. A
// sealed partition that does not check is an error naming its file.
func OpenReader(dir string, win Window) (*Reader, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("ledger: %s is not a directory", dir)
	}
	ls, err := list(dir)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxSegRaw))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	r := &Reader{dir: dir, win: win, gl: map[*partition]*[nsCount][]uint32{}}
	for _, stem := range ls.stems {
		hour, _ := parseStem(stem)
		// An Access may sit in the hour after its own (recorded late).
		if !win.From.IsZero() && hour+2*3600 <= win.From.Unix() {
			continue
		}
		if !win.To.IsZero() && hour > win.To.Unix() {
			continue
		}
		p, err := loadPartition(dir, stem, ls.seg[stem], dec)
		if err != nil {
			return nil, err
		}
		if p == nil || len(p.entries) == 0 || p.maxT < win.lo() || p.minT > win.hi() {
			continue
		}
		r.parts = append(r.parts, p)
	}
	return r, nil
}

// loadPartition reads stem's sealed file, or its log (indexed on the
// fly). A log sealed meanwhile is read sealed; nil when it is gone.
func loadPartition(dir, stem string, sealed bool, dec *zstd.Decoder) (*partition, error) {
	if !sealed {
		path := walPath(dir, stem)
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			sealed = true
		case err != nil:
			return nil, fmt.Errorf("ledger: %w", err)
		default:
			p, _, _ := readLog(path, b) // a tail being written is not an error
			if p == nil {
				if len(b) < frameHead+2 {
					return nil, nil // created, header not yet written
				}
				return nil, fmt.Errorf("ledger: %s: not a ledger log (no header frame)", path)
			}
			p.buildIndex()
			return p, nil
		}
	}
	path := segPath(dir, stem)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	p, err := readSeg(path, b, dec)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", path, err)
	}
	return p, nil
}

// Partitions is how many partitions the reader loaded.
func (r *Reader) Partitions() int { return len(r.parts) }

// global maps a partition's integer in ns to the reader's.
func (r *Reader) global(p *partition, ns int, v uint32) uint32 {
	m := r.gl[p]
	if m == nil {
		m = &[nsCount][]uint32{}
		r.gl[p] = m
	}
	if m[ns] == nil {
		m[ns] = make([]uint32, len(p.dict[ns]))
	}
	if g := m[ns][v]; g != 0 {
		return g - 1
	}
	g := r.glob[ns].id(p.dict[ns][v])
	m[ns][v] = g + 1
	return g
}

// globalize adds the partition bitmap b (integers of ns) to out.
func (r *Reader) globalize(p *partition, ns int, b *roaring.Bitmap, out *roaring.Bitmap) {
	if b == nil {
		return
	}
	it := b.Iterator()
	for it.HasNext() {
		out.Add(r.global(p, ns, it.Next()))
	}
}

// entryOf turns a stored Access back into names; hashed values read as
// "#" and the hash in hex.
func (p *partition) entryOf(e *entry) *Entry {
	out := &Entry{Time: time.UnixMicro(e.t).UTC(), RequestID: e.reqID, Unreferenced: e.unref, Status: int(e.status)}
	nm := func(v uint32) string {
		if v == 0 {
			return ""
		}
		return p.name(nsName, v-1)
	}
	hx := func(h uint64) string {
		if h == 0 {
			return ""
		}
		return fmt.Sprintf("#%016x", h)
	}
	out.Route, out.Rule, out.Facet = nm(e.route), nm(e.rule), nm(e.facet)
	for f, v := range e.facets {
		if v != 0 {
			out.Identity[f] = p.name(nsFacet+f, v-1)
		}
	}
	if e.list != 0 {
		out.List = p.name(nsID, e.list-1)
	}
	out.Page, out.Lookup = hx(e.page), hx(e.lookup)
	for _, v := range e.masks {
		out.MaskRules = append(out.MaskRules, p.name(nsName, v))
	}
	for _, v := range e.classes {
		out.Classes = append(out.Classes, p.name(nsName, v))
	}
	for _, rc := range e.recs {
		out.Records = append(out.Records, Record{ID: p.name(nsID, rc.id), Classes: rc.classes, Masked: rc.masked})
	}
	for _, v := range e.authors {
		out.Authors = append(out.Authors, p.name(nsID, v))
	}
	for _, h := range e.links {
		out.Links = append(out.Links, hx(h))
	}
	return out
}
