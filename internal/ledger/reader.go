package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

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
// whole frame. Sealed partitions are mapped, not read (those of the days
// their rollups answer whole only when a query other than reach needs
// them: coveredDays): a query touches the
// tables it asks (reach: who viewed each author; who-took: who was served
// each subject), and decompresses a partition's Accesses only when it needs
// them (a window that cuts the partition, explain, took-by). The reader
// checks the structure of what it reads, not the partitions' hashes: that
// is Verify's work (`warden ledger verify`).
type Reader struct {
	dir   string
	win   Window
	parts []*partition
	// d is the shared dictionary, plus the integers this reader (or its
	// cache) gave to values only an open log holds.
	d       names
	dec     *zstd.Decoder
	maps    [][]byte
	cleanup runtime.Cleanup
	// lazy holds the index of each open-log chunk the cache gave, built
	// by the first query that reads it (took-by, explain and Distinct
	// read the Accesses only).
	lazy map[*partition]*lazyTables
	// viewNS is the namespace of the identities Viewers last returned.
	viewNS int
	// rollups are the days' rollups that answer reach for their hours
	// (see loadRollups).
	rollups []*rollup
	// auts are the author indexes (authored.go) of the hours a window
	// cut that reach looked for, nil when an hour has none it can use.
	auts map[*partition]*authored
	// runBufs keeps Viewers' runs (*[]uint32) for the next query.
	runBufs sync.Pool
	// decodes counts the sealed partitions whose Accesses were decoded
	// whole: what the skips (lacks, lacksReqID) save shows in tests.
	decodes int
	// unmapped counts the partitions not mapped yet (coveredDays):
	// reach over a day its rollup answers never maps them; any other
	// query maps them all first (load).
	unmapped int
	// warnFn is WithWarnings' hook; fallbacks counts what warn reported.
	warnFn    func(error)
	fallbacks int
	// eachErr is what cut the last Each short (Err).
	eachErr error
}

// tupleFacet is, for facet f, the value (+1, 0 absent) of each tuple of
// the shared dictionary (only the sealer adds tuples: none is past it).
func (r *Reader) tupleFacet(f int) []uint32 { return r.d.d.tupleFacet(f) }

// OpenReader loads the partitions of dir that may hold Accesses of win. A
// sealed partition that does not check is an error naming its file. With
// WithCache the open logs are read through the cache (only what was
// appended since its last reader); without, whole.
func OpenReader(dir string, win Window, opts ...ReaderOption) (*Reader, error) {
	var o readerOptions
	for _, opt := range opts {
		opt(&o)
	}
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
	if err := isLedger(dir, ls); err != nil {
		return nil, err
	}
	// As many decoders as cores: reach reads its sections in parallel.
	dec, err := newDecoder(runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	r := &Reader{dir: dir, win: win, dec: dec, warnFn: o.warn}
	// An Access may sit in the hour after its own (recorded late).
	inWin := func(hour int64) bool {
		return (win.From.IsZero() || hour+2*3600 > win.From.Unix()) && (win.To.IsZero() || hour <= win.To.Unix())
	}
	var stems, logStems []string
	for _, stem := range ls.stems {
		if key, _ := parseStem(stem); inWin(hourOf(key)) {
			stems = append(stems, stem)
			if !ls.seg[stem] {
				logStems = append(logStems, stem)
			}
		}
	}
	byStem := make(map[string][]*partition, len(stems))
	var loaded []*partition // logs read whole here, translated below
	covered := coveredDays(dir, ls, stems, win)
	for _, stem := range stems {
		if !ls.seg[stem] && o.cache != nil {
			continue
		}
		if c, ok := covered[stem]; ok {
			byStem[stem] = []*partition{c}
			r.unmapped++
			continue
		}
		p, err := r.loadPartition(stem, ls.seg[stem])
		if err != nil {
			r.Close()
			return nil, err
		}
		if p == nil {
			continue
		}
		byStem[stem] = []*partition{p}
		if !p.sealed {
			loaded = append(loaded, p)
		}
	}
	// The dictionary is read after the sealed partitions: the sealer syncs
	// it before a partition that uses it appears.
	if o.cache != nil {
		logs, gone, n, err := o.cache.openLogs(dir, ls, logStems)
		if errors.Is(err, errCacheFull) {
			r.Close()
			return OpenReader(dir, win, WithWarnings(o.warn)) // read the open logs whole, as without a cache
		}
		if err != nil {
			r.Close()
			return nil, err
		}
		r.d, r.lazy = n, map[*partition]*lazyTables{}
		for stem, cs := range logs {
			for _, c := range cs {
				byStem[stem] = append(byStem[stem], c.p)
				r.lazy[c.p] = c.x
			}
		}
		for _, stem := range gone { // sealed since listed; the dictionary read after
			p, err := r.loadPartition(stem, true)
			if err != nil {
				r.Close()
				return nil, err
			}
			if p != nil {
				byStem[stem] = []*partition{p}
			}
		}
	} else {
		d, err := loadDictionary(dir)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.d = names{d: d}
	}
	for _, stem := range stems {
		for _, p := range byStem[stem] {
			if p.maxT >= win.lo() && p.minT <= win.hi() {
				r.parts = append(r.parts, p)
			}
		}
	}
	have := r.d.d.sizes()
	for _, p := range r.parts {
		if p.sealed {
			if err := r.inDictionary(p, have); err != nil {
				r.Close()
				return nil, err
			}
		}
	}
	for _, p := range loaded {
		p.translate(func(ns int, s []byte) uint32 {
			v, _ := r.d.d.t[ns].intern(string(s))
			return v
		})
		p.buildIndex()
	}
	r.loadRollups(ls)
	r.cleanup = runtime.AddCleanup(r, unmapAll, r.maps)
	return r, nil
}

// errNotLoaded is a lazy partition read before load mapped it: a query
// that forgot to load fails loudly, never answers without the hour.
var errNotLoaded = errors.New("ledger: internal error: partition read before it was mapped")

// coveredDays finds the days of the window that their rollup can answer
// whole, from the rollups' headers and the partitions' trailing hashes
// alone (no partition mapped): the window covers the rollup's Accesses,
// every partition of the day in stems is sealed, and they are exactly
// those the rollup names, by stem and SHA-256. Each of those partitions
// is returned lazy: not mapped until a query other than reach's needs it
// (load). A busy gateway's day of thousands of parts cost a reach about
// 40 us a part to map, parse and unmap (BenchmarkBusyDay), and counted
// against the process's memory maps.
func coveredDays(dir string, ls *listing, stems []string, win Window) map[string]*partition {
	byDay := map[int64][]string{}
	for _, stem := range stems {
		k, _ := parseStem(stem)
		byDay[dayOf(hourOf(k))] = append(byDay[dayOf(hourOf(k))], stem)
	}
	out := map[string]*partition{}
	for day, ds := range byDay {
		if !ls.days[day] {
			continue
		}
		x := rollupHeaderOf(rollupPath(dir, day), len(ds))
		if x == nil || x.day != day || x.minT < win.lo() || x.maxT > win.hi() || len(x.hours) != len(ds) {
			continue
		}
		stubs := make([]*partition, 0, len(ds))
		for i, stem := range ds {
			k, _ := parseStem(stem)
			if !ls.seg[stem] || ls.wal[stem] || x.hours[i] != k {
				break
			}
			h, err := segHash(segPath(dir, stem))
			if err != nil || h != x.hashes[i] {
				break
			}
			p := newPartition(segPath(dir, stem), k)
			// The day's bounds (inside the window) until load reads the
			// partition's own; format 4 at least (no rollup is made of
			// format 3 hours), checked when loaded.
			p.sealed, p.lazy, p.format, p.hash = true, true, 4, h
			p.minT, p.maxT = x.minT, x.maxT
			p.coldErr = errNotLoaded
			stubs = append(stubs, p)
		}
		if len(stubs) == len(ds) {
			for i, stem := range ds {
				out[stem] = stubs[i]
			}
		}
	}
	return out
}

// segHash is the SHA-256 a sealed partition ends with, read alone.
func segHash(path string) (h [32]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return h, err
	}
	if info.Size() < 32 {
		return h, fmt.Errorf("%s: too short for a sealed partition", path)
	}
	if _, err = f.ReadAt(h[:], info.Size()-32); err != nil {
		return h, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// load maps the lazy partitions (coveredDays) in place: every query but
// reach's reads the hours. A partition that does not parse, or is not
// the one its day's rollup named when the reader opened (its hash), is
// an error naming its file, as at open.
func (r *Reader) load() error {
	if r.unmapped == 0 {
		return nil
	}
	for _, p := range r.parts {
		if err := r.loadLazy(p); err != nil {
			return err
		}
	}
	return nil
}

// loadLazy maps p when it is lazy.
func (r *Reader) loadLazy(p *partition) error {
	if !p.lazy {
		return nil
	}
	stem := strings.TrimSuffix(filepath.Base(p.path), segExt)
	n := len(r.maps)
	q, err := r.loadPartition(stem, true)
	if len(r.maps) != n {
		// The cleanup registered at open holds the maps as they were then.
		r.cleanup.Stop()
		r.cleanup = runtime.AddCleanup(r, unmapAll, r.maps)
	}
	if err != nil {
		return err
	}
	if q == nil {
		return fmt.Errorf("ledger: %s: removed while the reader read its day (retention?); ask again", p.path)
	}
	if q.hash != p.hash || q.format < 4 {
		return fmt.Errorf("ledger: %s: not the partition its day's rollup named when the reader opened", p.path)
	}
	if err := r.inDictionary(q, r.d.d.sizes()); err != nil {
		return err
	}
	*p = *q // in place: the rollup's parts and callers hold p
	r.unmapped--
	return nil
}

// inDictionary is an error unless every id sealed partition p refers to
// is in the shared dictionary (have: its sizes): the sealer syncs the
// dictionary before a partition that uses it appears.
func (r *Reader) inDictionary(p *partition, have [nsCount]uint32) error {
	for ns, n := range p.sizes {
		if uint32(n) > have[ns] {
			return fmt.Errorf("ledger: %s: refers to %d ids of namespace %d, %s holds %d (cut short?)",
				p.path, n, ns, filepath.Join(r.dir, idsFile), have[ns])
		}
	}
	return nil
}

// loadRollups maps the rollups of the window's days that can answer
// reach for their hours: the window covers the day's Accesses, and the
// partitions the reader holds of that day are exactly the sealed hours
// the rollup names, by hash. A rollup that does not parse, or names
// other hours (a day the window cuts, an hour sealed after it), is not
// used: its hours answer, with the same result (verify reports a rollup
// that does not check).
func (r *Reader) loadRollups(ls *listing) {
	byDay := map[int64][]*partition{}
	var days []int64
	for _, p := range r.parts {
		d := dayOf(p.hour)
		if byDay[d] == nil {
			days = append(days, d)
		}
		byDay[d] = append(byDay[d], p)
	}
	have := r.d.d.sizes()
	for _, day := range days {
		ps := byDay[day]
		if !ls.days[day] {
			continue
		}
		path := rollupPath(r.dir, day)
		b, err := mapFile(path)
		if err != nil {
			r.warn(fmt.Errorf("ledger: %s: day rollup not read, its hours answer: %w", path, err))
			continue
		}
		r.maps = append(r.maps, b)
		x, err := parseRollup(path, b)
		if err != nil {
			r.warn(fmt.Errorf("ledger: %s: day rollup does not parse, its hours answer (the sealer rebuilds it on start; warden ledger verify): %w", path, err))
			continue
		}
		if x.minT < r.win.lo() || x.maxT > r.win.hi() || len(x.hours) != len(ps) {
			continue
		}
		match := true
		for i, f := range x.facets {
			match = match && uint64(x.limits[i]) <= uint64(have[nsFacet+f])
		}
		for i, p := range ps {
			match = match && p.sealed && p.format >= 4 && p.hour == x.hours[i] && p.hash == x.hashes[i]
		}
		if match {
			x.parts = ps
			r.rollups = append(r.rollups, x)
		}
	}
}

// authoredIndex is the author index of sealed hour p, mapped on first
// use; nil when it has none, or one that does not parse or names another
// hour (its columns answer then, with the same result; verify reports an
// index that does not check).
func (r *Reader) authoredIndex(p *partition) *authored {
	if x, ok := r.auts[p]; ok {
		return x
	}
	if r.auts == nil {
		r.auts = map[*partition]*authored{}
	}
	r.auts[p] = nil
	if !p.sealed || p.format < 4 {
		return nil
	}
	path := autPath(r.dir, partName(p.hour))
	b, err := mapFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // not made yet (the sealer makes it after the seal)
	}
	if err != nil {
		r.warn(fmt.Errorf("ledger: %s: author index not read, its hour's columns answer: %w", path, err))
		return nil
	}
	r.maps = append(r.maps, b)
	// The cleanup registered at open holds the maps as they were then.
	r.cleanup.Stop()
	r.cleanup = runtime.AddCleanup(r, unmapAll, r.maps)
	x, err := checkAuthored(b, p.hour, p.hash)
	if err != nil {
		r.warn(fmt.Errorf("ledger: %s: author index not used, its hour's columns answer (the writer rebuilds it on start): %w", path, err))
		return nil
	}
	r.auts[p] = x
	return x
}

func unmapAll(maps [][]byte) {
	for _, m := range maps {
		syscall.Munmap(m)
	}
}

// Close releases the mapped partitions; the reader must not be used after.
// A reader not closed is released when it is collected.
func (r *Reader) Close() {
	r.cleanup.Stop()
	unmapAll(r.maps)
	r.maps, r.parts = nil, nil
	r.dec.Close()
}

// loadPartition maps stem's sealed file, or reads its log. A log sealed
// meanwhile is read sealed; nil when it is gone.
func (r *Reader) loadPartition(stem string, sealed bool) (*partition, error) {
	if !sealed {
		path := walPath(r.dir, stem)
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("ledger: %w", err)
		default:
			p, valid, why := readLog(path, b) // a tail being written is not an error
			if p == nil {
				if incomplete(b) {
					return nil, nil // created, header not yet written whole
				}
				return nil, fmt.Errorf("ledger: %s: not a ledger log (no header frame)", path)
			}
			if err := logDamage(path, b, valid, why); err != nil {
				return nil, err // damage is: a query never answers without what follows it
			}
			if len(p.entries) == 0 {
				return nil, nil
			}
			return p, nil
		}
	}
	path := segPath(r.dir, stem)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if info.Size() < int64(len(segMagic)+32) {
		return nil, fmt.Errorf("ledger: %s: not a sealed ledger partition (too short)", path)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(info.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("ledger: map %s: %w", path, err)
	}
	r.maps = append(r.maps, b)
	p, err := parseSeg(path, b)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", path, err)
	}
	return p, nil
}

// tables is p's index (p a log's or a format 3 partition): an open-log
// chunk from the cache has it built on first use, once for every reader.
func (r *Reader) tables(p *partition) *tables {
	if l := r.lazy[p]; l != nil {
		return l.get(p)
	}
	return p.x
}

// Partitions is how many partitions the reader loaded.
func (r *Reader) Partitions() int { return len(r.parts) }

// accesses is p's Accesses. A log's (read whole or from the cache) are
// in memory already. A sealed partition's are decoded from its compressed
// bytes on every call and not kept: a query scans one partition at a time
// and drops it before the next, so that its memory is one partition's
// Accesses (about 300 bytes each decoded), not the window's. An error
// names the file: a query over a damaged hour fails, it never answers
// from the other hours as if the damaged one held nothing.
func (r *Reader) accesses(p *partition) ([]entry, error) {
	if !p.sealed || p.entries != nil {
		return p.entries, nil
	}
	r.decodes++
	return p.decodeCold(r.dec, &r.d.d.t[nsTuple])
}

// warn reports a derived file (a day's rollup, an hour's author index)
// that could not be used, the answer computed exactly from the hours
// instead: to the WithWarnings hook, and counted (Fallbacks).
func (r *Reader) warn(err error) {
	r.fallbacks++
	if r.warnFn != nil {
		r.warnFn(err)
	}
}

// Fallbacks is how many derived files (rollups, author indexes) this
// reader's queries passed over because they did not parse or decode,
// answering from the hours instead (each also given to WithWarnings).
func (r *Reader) Fallbacks() int { return r.fallbacks }

// Err is what cut the last Each short (a partition whose Accesses do not
// decode), nil when it visited every Access it was asked to: Each has no
// error of its own, so that a Reader stays a trace.Entries.
func (r *Reader) Err() error { return r.eachErr }

// name is the value behind id v of ns.
func (r *Reader) name(ns int, v uint32) string {
	return r.d.str(ns, v)
}

// entryOf turns a stored Access back into names; hashed values read as
// "#" and the hash in hex.
func (r *Reader) entryOf(e *entry) *Entry {
	out := &Entry{Time: time.UnixMicro(e.t).UTC(), RequestID: e.reqID, Unreferenced: e.unref, AgeRank: e.ageRank, Status: int(e.status)}
	nm := func(v uint32) string {
		if v == 0 {
			return ""
		}
		return r.name(nsName, v-1)
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
			out.Identity[f] = r.name(nsFacet+f, v-1)
		}
	}
	if e.list != 0 {
		out.List = r.name(nsID, e.list-1)
	}
	out.Page, out.Lookup = hx(e.page), hx(e.lookup)
	for _, v := range e.masks {
		out.MaskRules = append(out.MaskRules, r.name(nsName, v))
	}
	for _, v := range e.classes {
		out.Classes = append(out.Classes, r.name(nsName, v))
	}
	for _, rc := range e.recs {
		out.Records = append(out.Records, Record{ID: r.name(nsID, rc.id), Classes: rc.classes, Masked: rc.masked})
	}
	for _, v := range e.authors {
		out.Authors = append(out.Authors, r.name(nsID, v))
	}
	for _, h := range e.links {
		out.Links = append(out.Links, hx(h))
	}
	return out
}

// lacks reports whether sealed partition p (format 4) holds no Access
// whose identity's tuple match accepts, from its identity column alone,
// so that took-by and the distinct counts skip the hours an identity was
// not seen in without decoding them. False when it cannot tell (a log, a
// format 3 partition, a column that does not parse: the Accesses are
// decoded then, and a corrupt one skipped as before).
func (r *Reader) lacks(p *partition, match func(t uint64) bool) bool {
	if !columnar(p) {
		return false
	}
	found, err := anyTuple(p.cold, r.dec, match)
	return err == nil && !found
}

// lacksReqID reports whether sealed partition p (format 4) holds no
// Access of request id id, from its request id column alone. False when
// it cannot tell (as lacks).
func (r *Reader) lacksReqID(p *partition, id string) bool {
	if !columnar(p) {
		return false
	}
	found, err := hasReqID(p.cold, r.dec, id)
	return err == nil && !found
}

// columnar reports whether p's Accesses are format 4's compressed columns,
// whole, so that one column can be read alone.
func columnar(p *partition) bool {
	return p.sealed && p.format >= 4 && p.entries == nil && p.coldErr == nil
}

// tupleHas is a match for lacks: the tuples whose facet f is ident (an
// integer of the reader's names; a tuple past the dictionary matches, so
// that the Accesses are decoded and checked).
func (r *Reader) tupleHas(f int, ident uint32) func(t uint64) bool {
	var tf []uint32 // built by the first sealed partition asked (4 bytes a tuple)
	return func(t uint64) bool {
		if tf == nil {
			tf = r.tupleFacet(f)
		}
		return t >= uint64(len(tf)) || tf[t] == ident+1
	}
}
