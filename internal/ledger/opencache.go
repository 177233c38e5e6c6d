package ledger

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unsafe"
)

// Cache keeps a directory's open logs read for the readers that follow:
// each log's Accesses decoded and translated into the shared dictionary's
// integers, in chunks, and the offset read. A reader opened with WithCache
// decodes only the bytes appended since the last reader (whole frames: a
// torn tail frame stays unread until it is complete) and translates them
// into a new chunk, indexed when a query first needs its index (who-took
// and reach do; took-by, explain and Distinct read the Accesses), so that
// under live traffic a query costs little more than on a still ledger
// (reading the open hour whole cost about 3 s a query with a 10-minute lab
// run's 800,000 Accesses in it).
//
// Whoever serves queries repeatedly (the dashboard, the admin API) owns
// one Cache and passes it to every reader; a command that asks once uses
// none. A Cache serves one directory: given another it starts over. Its
// memory is the open hour's Accesses and index, held until the hour is
// sealed, and bounded (NewCache): an open log that would take the cache
// past its bound is given up and read whole by each reader until sealed.
//
// When the shared dictionary grows (the sealer sealed an hour, which it
// does right after the hour ends, while the new log is still short) the
// open logs are read again: a name only a log held has an integer of the
// reader's past the dictionary's, and the dictionary may now give it
// another. A log replaced or cut shorter than what was read is read again
// too (a restarted writer cuts only a torn tail, which was never read).
//
// What readers share is never written after it is handed out: chunks are
// replaced, not extended (a chunk's index is built once, under its
// sync.Once, by whichever reader needs it first), and the names only logs
// hold (extraNames) are looked up under a read lock while the cache adds
// to them. The zero Cache is ready to use.
type Cache struct {
	mu   sync.Mutex
	dir  string
	ids  fileStamp   // the shared dictionary's file as d was read
	d    *dictionary // the shared dictionary; look-ups built before it is shared
	more *extraNames
	logs map[string]*openLog
	// chunk is chunkMax (0 too) but in tests, which cut chunks small to
	// split and merge a few hundred Accesses.
	chunk int
	// max bounds the Accesses held over all open logs (0: CacheAccesses).
	max int
	// over holds the logs given up on for the bound, as they were: read
	// whole by each reader until sealed or replaced.
	over map[string]os.FileInfo
}

// CacheAccesses is the default bound of a Cache: about 650 MiB of
// decoded Accesses and their indexes (a 10-minute lab run's 800,000 took
// 248 MiB).
const CacheAccesses = 2_000_000

// NewCache returns an empty Cache holding at most maxAccesses decoded
// Accesses (0: CacheAccesses). Past it, the open log that crossed the
// bound is dropped from the cache and read whole by each reader, as
// without a cache, until it is sealed: memory stays bounded, queries on
// that hour get slower (about 4 µs an Access).
func NewCache(maxAccesses int) *Cache { return &Cache{max: maxAccesses} }

// errCacheFull says a reader must read the open logs itself: one of them
// holds more Accesses than the cache may.
var errCacheFull = errors.New("ledger: open logs past the cache's bound")

// ReaderOption configures OpenReader.
type ReaderOption func(*readerOptions)

type readerOptions struct {
	cache *Cache
	warn  func(error)
}

// WithWarnings gives fn each derived file (a day's rollup, an hour's
// author index) a query passed over because it does not parse or decode:
// the answer is computed exactly from the hours instead, and fn says so
// (the commands print it on stderr, the gateway logs it). Without it the
// reader only counts them (Reader.Fallbacks).
func WithWarnings(fn func(error)) ReaderOption { return func(o *readerOptions) { o.warn = fn } }

// WithCache reads the open logs through c (nil: read them whole).
func WithCache(c *Cache) ReaderOption { return func(o *readerOptions) { o.cache = c } }

// chunkMax bounds the Accesses a chunk of an open log holds: a query that
// reads a chunk's index first builds it over at most this many (about 40
// ms), and a query visits one chunk per this many Accesses of the open
// hour.
const chunkMax = 1 << 14

// openLog is one open log as the cache read it.
type openLog struct {
	hour   int64
	info   os.FileInfo // the file read, to tell a replaced log
	off    int64       // bytes read, whole frames only
	header bool        // the header frame was read
	ids    [nsCount][]uint32
	sizes  [nsCount]int // len(ids[ns]): what decodeEntry checks ids against
	chunks []chunk      // translated, in the log's order
	n      int          // Accesses in chunks
	bad    error        // the log is damaged (logDamage): every reader is told, none reads past it
}

// extraNames holds the names that only open logs hold, numbered after the
// shared dictionary's: name i of namespace ns is integer base[ns]+i.
type extraNames struct {
	mu   sync.RWMutex
	base [nsCount]uint32
	t    [nsCount]strtab
}

func newExtraNames(d *dictionary) *extraNames {
	m := &extraNames{base: d.sizes()}
	for ns := range m.t {
		m.t[ns].index() // find must not build it under the read lock
	}
	return m
}

// names is the dictionary a reader reads: the shared dictionary, and the
// names only open logs hold when they are the cache's (without a cache a
// reader adds those to its own copy of the dictionary).
type names struct {
	d    *dictionary
	more *extraNames
}

// id looks s up in ns.
func (n names) id(ns int, s string) (uint32, bool) {
	if v, ok := n.d.id(ns, s); ok || n.more == nil {
		return v, ok
	}
	n.more.mu.RLock()
	defer n.more.mu.RUnlock()
	v, ok := n.more.t[ns].find(s)
	return n.more.base[ns] + v, ok
}

// str is the name of integer v of ns; "" when there is none.
func (n names) str(ns int, v uint32) string {
	if n.more == nil || v < n.more.base[ns] {
		return n.d.t[ns].str(v)
	}
	n.more.mu.RLock()
	defer n.more.mu.RUnlock()
	return n.more.t[ns].str(v - n.more.base[ns])
}

// len is how many integers ns holds.
func (n names) len(ns int) int {
	if n.more == nil {
		return n.d.t[ns].len()
	}
	n.more.mu.RLock()
	defer n.more.mu.RUnlock()
	return int(n.more.base[ns]) + n.more.t[ns].len()
}

// intern gives s an integer of the shared dictionary's, or past it.
// Called with c.mu held.
func (c *Cache) intern(ns int, s []byte) uint32 {
	str := unsafe.String(unsafe.SliceData(s), len(s))
	if v, ok := c.d.t[ns].find(str); ok {
		return v
	}
	c.more.mu.Lock()
	defer c.more.mu.Unlock()
	v, _ := c.more.t[ns].intern(str)
	return c.more.base[ns] + v
}

// fileStamp says the shared dictionary's file is as it was: it is only
// appended to, so a size and a modification time that match are the same
// bytes.
type fileStamp struct {
	size  int64
	mtime time.Time
	ok    bool
}

func stampOf(path string) fileStamp {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: info.Size(), mtime: info.ModTime(), ok: true}
}

// openLogs brings the logs of stems (unsealed in ls) up to date and
// returns each one's chunks, the stems whose log was gone (sealed since ls
// was listed: the caller maps their sealed file) and the names to read
// them with.
func (c *Cache) openLogs(dir string, ls *listing, stems []string) (map[string][]chunk, []string, names, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir != dir {
		c.dir, c.d, c.more, c.logs = dir, nil, nil, nil
	}
	// The logs are opened before the dictionary is looked at: a log gone
	// was sealed, and its integers were synced to the dictionary before,
	// so the dictionary read below holds them.
	files := make(map[string]*os.File, len(stems))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var gone []string
	for _, stem := range stems {
		f, err := os.Open(walPath(dir, stem))
		switch {
		case errors.Is(err, os.ErrNotExist):
			gone = append(gone, stem)
		case err != nil:
			return nil, nil, names{}, fmt.Errorf("ledger: %w", err)
		default:
			files[stem] = f
		}
	}
	if ids := stampOf(filepath.Join(dir, idsFile)); c.d == nil || ids != c.ids {
		d, err := loadDictionary(dir)
		if err != nil {
			return nil, nil, names{}, err
		}
		for ns := range d.t {
			d.t[ns].index()
		}
		c.d, c.ids, c.more, c.logs = d, ids, newExtraNames(d), map[string]*openLog{}
	}
	for stem := range c.logs {
		if ls.seg[stem] || !ls.wal[stem] {
			delete(c.logs, stem) // sealed or removed
		}
	}
	for stem, was := range c.over {
		if f := files[stem]; f == nil || ls.seg[stem] {
			delete(c.over, stem)
		} else if info, err := f.Stat(); err != nil || !os.SameFile(was, info) {
			delete(c.over, stem)
		} else {
			return nil, nil, names{}, errCacheFull
		}
	}
	out := make(map[string][]chunk, len(files))
	for _, stem := range stems {
		f := files[stem]
		if f == nil {
			delete(c.logs, stem)
			continue
		}
		info, err := f.Stat()
		if err != nil {
			return nil, nil, names{}, fmt.Errorf("ledger: %w", err)
		}
		lg := c.logs[stem]
		if lg == nil || !os.SameFile(lg.info, info) || info.Size() < lg.off {
			lg = &openLog{}
			c.logs[stem] = lg
		}
		lg.info = info
		if err := c.readTail(lg, f, info.Size()); err != nil {
			delete(c.logs, stem)
			return nil, nil, names{}, err
		}
		out[stem] = slices.Clone(lg.chunks)
	}
	if held, most := c.held(), cmp.Or(c.max, CacheAccesses); held > most {
		// Give up the largest log (the open hour), keep the others.
		big := ""
		for stem, lg := range c.logs {
			if big == "" || lg.n > c.logs[big].n {
				big = stem
			}
		}
		if c.over == nil {
			c.over = map[string]os.FileInfo{}
		}
		c.over[big] = c.logs[big].info
		delete(c.logs, big)
		return nil, nil, names{}, errCacheFull
	}
	return out, gone, names{d: c.d, more: c.more}, nil
}

// held is how many Accesses the cache holds.
func (c *Cache) held() int {
	n := 0
	for _, lg := range c.logs {
		n += lg.n
	}
	return n
}

// readTail decodes what was appended to lg's file up to size, as readLog
// would read it: up to the last whole frame, or up to a frame that checks
// but does not decode.
func (c *Cache) readTail(lg *openLog, f *os.File, size int64) error {
	if lg.bad != nil {
		return lg.bad
	}
	if size <= lg.off {
		return nil
	}
	b := make([]byte, size-lg.off)
	n, err := f.ReadAt(b, lg.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("ledger: %w", err)
	}
	b = b[:n]
	off := 0
	var fresh []entry
	if !lg.header {
		kind, body, n, err := nextFrame(b)
		if err == nil && kind == kindHeader {
			lg.hour, err = parseHeader(body)
		}
		switch {
		case incomplete(b):
			return nil // created, header not yet written whole
		case err != nil || kind != kindHeader:
			return fmt.Errorf("ledger: %s: not a ledger log (no header frame)", f.Name())
		}
		lg.header, off = true, n
	}
	fresh = make([]entry, 0, countAccesses(b[off:]))
	var e entry
	bad := func(at int, why string) {
		lg.bad = fmt.Errorf("ledger: %s: damaged: %s at byte %d (its Accesses after it are not read: warden ledger verify)", f.Name(), why, lg.off+int64(at))
	}
read:
	for off < len(b) {
		kind, body, n, err := nextFrame(b[off:])
		if err != nil {
			// Torn: the frame is still being written, read once whole;
			// unless whole frames follow it.
			if at, ok := wholeFramesAfter(b, off); ok {
				bad(off, fmt.Sprintf("a frame that does not check, whole frames following from byte %d,", lg.off+int64(at)))
			}
			break
		}
		switch kind {
		case kindDict:
			if len(body) < 1 || int(body[0]) >= nsCount {
				bad(off, "a bad dictionary entry")
				break read
			}
			ns := body[0]
			lg.ids[ns] = append(lg.ids[ns], c.intern(int(ns), body[1:]))
			lg.sizes[ns]++
		case kindAccess:
			if decodeEntry(body, lg.hour*1e6, &lg.sizes, &e, nil) != nil {
				bad(off, "an Access that does not decode")
				break read
			}
			translateEntry(&e, &lg.ids)
			fresh = append(fresh, e)
		default:
			bad(off, fmt.Sprintf("a frame of unknown kind %d", kind))
			break read
		}
		off += n
	}
	lg.off += int64(off)
	most := c.chunk
	if most <= 0 {
		most = chunkMax
	}
	lg.add(f.Name(), fresh, most)
	return lg.bad
}

// incomplete reports whether b is the start of a frame still being
// written: too short for its length, which is plausible.
func incomplete(b []byte) bool {
	if len(b) < frameHead+1 {
		return true
	}
	n := binary.LittleEndian.Uint32(b)
	return n >= 1 && n <= maxFrameBody && uint64(len(b)-frameHead) < uint64(n)
}

// chunk is part of an open log's Accesses, as a partition whose index
// (p.x, never set) is built when a query first reads it: a page that only
// reads Accesses (took-by, explain, the identities' counts) does not pay
// for indexing what was appended, and a chunk merged before any query
// indexed it is never indexed.
type chunk struct {
	p *partition
	x *lazyTables
}

type lazyTables struct {
	once sync.Once
	x    *tables
}

func (l *lazyTables) get(p *partition) *tables {
	l.once.Do(func() { l.x = buildTables(p.entries, p.hour) })
	return l.x
}

// add appends fresh Accesses as chunks after lg's, merging the last two
// while the older is at most twice the newer and both fit a chunk: each
// Access is copied into a few chunks at most, and a reader visits about
// one chunk per most Accesses.
func (lg *openLog) add(path string, fresh []entry, most int) {
	lg.n += len(fresh)
	for len(fresh) > 0 {
		n := min(len(fresh), most)
		lg.chunks = append(lg.chunks, newChunk(path, lg.hour, fresh[:n:n]))
		fresh = fresh[n:]
		for k := len(lg.chunks); k >= 2; k = len(lg.chunks) {
			a, b := lg.chunks[k-2].p.entries, lg.chunks[k-1].p.entries
			if len(a) > 2*len(b) || len(a)+len(b) > most {
				break
			}
			lg.chunks = append(lg.chunks[:k-2], newChunk(path, lg.hour, slices.Concat(a, b)))
		}
	}
}

// newChunk is a chunk of an open log's Accesses (translated).
func newChunk(path string, hour int64, es []entry) chunk {
	p := newPartition(path, hour)
	for i := range es {
		p.minT, p.maxT = min(p.minT, es[i].t), max(p.maxT, es[i].t)
	}
	p.entries = es
	return chunk{p: p, x: &lazyTables{}}
}

// translateEntry turns e's ids from a log's own dictionary into those m
// gives (m[ns][i]: the integer of the log's name i of ns).
func translateEntry(e *entry, m *[nsCount][]uint32) {
	plus := func(ns int, v uint32) uint32 {
		if v == 0 {
			return 0
		}
		return m[ns][v-1] + 1
	}
	e.route, e.rule, e.facet = plus(nsName, e.route), plus(nsName, e.rule), plus(nsName, e.facet)
	for f, v := range e.facets {
		e.facets[f] = plus(nsFacet+f, v)
	}
	e.list = plus(nsID, e.list)
	for k, v := range e.masks {
		e.masks[k] = m[nsName][v]
	}
	for k, v := range e.classes {
		e.classes[k] = m[nsName][v]
	}
	for k := range e.recs {
		e.recs[k].id = m[nsID][e.recs[k].id]
	}
	for k, v := range e.authors {
		e.authors[k] = m[nsID][v]
	}
}
