package disk

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// The snapshot's file header: magic, the format version (uint32 LE), four
// reserved zero bytes. Frames follow (see doc.go).
const (
	snapMagic    = "WARDNSNP"
	snapVersion  = 4
	snapHeader   = 16
	maxSnapFrame = 16 << 20
	// A frame is flushed once its payload passes this size.
	frameTarget = 1 << 20

	frameMeta    = 'H'
	frameLimits  = 'L'
	frameBudgets = 'B'
	frameLinks   = 'K'
	// Version 4: the detector's ban histories and windows.
	frameOffences = 'O'
	frameTracks   = 'T'
	frameEnd      = 'E'

	// Version 1 generation forms.
	genSmall = 0
	genBits  = 1
	// Version 2 generation flags.
	genFull = 1
)

var errVersion = errors.New("snapshot written by a newer warden")

// Source is what a snapshot reads: the memory store's shards.
type Source interface {
	Shards() int
	ExportShard(i int, st *memory.ShardState)
	HashKey() [16]byte
}

// snapInfo describes one snapshot file.
type snapInfo struct {
	version                int
	created                time.Time
	key                    [16]byte
	limits, budgets, links int
	offences, tracks       int // the detector's (version 4)
	bytes                  int64
}

// frameBuf builds one frame in place: 8 bytes kept for length and CRC,
// then the payload.
type frameBuf struct{ b []byte }

func (f *frameBuf) start(kind byte) {
	f.b = append(f.b[:0], make([]byte, frameHeader)...)
	f.b = append(f.b, kind)
}

func (f *frameBuf) seal() []byte {
	p := f.b[frameHeader:]
	binary.LittleEndian.PutUint32(f.b[:4], uint32(len(p)))
	binary.LittleEndian.PutUint32(f.b[4:8], crc32.Checksum(p, castagnoli))
	return f.b
}

func (f *frameBuf) u64(v uint64) { f.b = binary.LittleEndian.AppendUint64(f.b, v) }
func (f *frameBuf) n(v int)      { f.b = binary.AppendUvarint(f.b, uint64(v)) }

// writeSnapshot writes every shard of src to w, one shard at a time: each
// is copied under its lock (ExportShard), then encoded and written with no
// lock held; then det, the detector's state (nil: none).
func writeSnapshot(w io.Writer, src Source, det *store.DetectState, created time.Time) (snapInfo, error) {
	info := snapInfo{version: snapVersion, created: created, key: src.HashKey()}
	bw := bufio.NewWriterSize(w, 1<<20)
	var (
		fb   frameBuf
		st   memory.ShardState
		werr error
	)
	put := func() {
		if werr == nil {
			_, werr = bw.Write(fb.seal())
		}
	}
	h := make([]byte, snapHeader)
	copy(h, snapMagic)
	binary.LittleEndian.PutUint32(h[8:], snapVersion)
	if _, err := bw.Write(h); err != nil {
		return info, err
	}
	fb.start(frameMeta)
	fb.u64(uint64(created.UnixNano()))
	fb.b = append(fb.b, info.key[:]...)
	fb.n(src.Shards())
	put()
	for i := range src.Shards() {
		src.ExportShard(i, &st)
		for rest := st.Limits; len(rest) > 0; {
			chunk := rest[:min(len(rest), frameTarget/16)]
			rest = rest[len(chunk):]
			fb.start(frameLimits)
			fb.n(len(chunk))
			for _, l := range chunk {
				fb.u64(l.Key)
				fb.u64(uint64(l.TAT))
			}
			put()
		}
		for rest := st.Budgets; len(rest) > 0; {
			fb.start(frameBudgets)
			// How many entries make about frameTarget bytes.
			size, k := 0, 0
			for k < len(rest) && (k == 0 || size < frameTarget) {
				size += 32 + 8*len(rest[k].Subjects) + len(rest[k].Sketch)
				k++
			}
			fb.n(k)
			for _, b := range rest[:k] {
				fb.u64(b.Key)
				fb.u64(uint64(b.Start))
				fb.u64(uint64(b.Window))
				fb.n(len(b.Subjects))
				for _, x := range b.Subjects {
					fb.u64(x)
				}
				if b.Sketch == nil {
					fb.b = append(fb.b, 0)
				} else {
					fb.b = append(append(fb.b, 1), b.Sketch...)
				}
			}
			rest = rest[k:]
			put()
		}
		for rest := st.Links; len(rest) > 0; {
			fb.start(frameLinks)
			size, k := 0, 0
			for k < len(rest) && (k == 0 || size < frameTarget) {
				l := &rest[k]
				size += 57 + 14*(len(l.Cur.Small)+len(l.Old.Small))
				for _, a := range l.Answers {
					size += 14 + 8*len(a.IDs)
				}
				k++
			}
			fb.n(k)
			for _, l := range rest[:k] {
				fb.u64(l.Key)
				fb.gen(&l.Cur)
				fb.gen(&l.Old)
				fb.answers(&l)
			}
			rest = rest[k:]
			put()
		}
		info.limits += len(st.Limits)
		info.budgets += len(st.Budgets)
		info.links += len(st.Links)
		if werr != nil {
			return info, werr
		}
	}
	if det != nil {
		info.offences, info.tracks = len(det.Offences), len(det.Tracks)
		fb.detect(det, put)
	}
	fb.start(frameEnd)
	fb.n(info.limits)
	fb.n(info.budgets)
	fb.n(info.links)
	fb.n(info.offences)
	fb.n(info.tracks)
	put()
	if werr == nil {
		werr = bw.Flush()
	}
	return info, werr
}

// gen encodes one link generation (version 3): first, expires, flags,
// then the ids, one provenance byte per id and one answer tag (uvarint)
// per id.
func (f *frameBuf) gen(g *memory.LinkGenState) {
	f.u64(uint64(g.First))
	f.u64(uint64(g.Expires))
	var flags byte
	if g.Full {
		flags |= genFull
	}
	f.b = append(f.b, flags)
	f.n(len(g.Small))
	for _, x := range g.Small {
		f.u64(x)
	}
	for i := range g.Small {
		p := byte(0)
		if i < len(g.Prov) {
			p = g.Prov[i]
		}
		f.b = append(f.b, p)
	}
	for i := range g.Small {
		var tag uint32
		if i < len(g.Tags) {
			tag = g.Tags[i]
		}
		f.b = binary.AppendUvarint(f.b, uint64(tag))
	}
}

// answers encodes a link filter's fan-out state (version 3): the hold's
// end (int64), then n answers, each tag (uvarint), expires (int64), m,
// m × id uint64.
func (f *frameBuf) answers(l *memory.LinkState) {
	f.u64(uint64(l.Held))
	f.n(len(l.Answers))
	for _, a := range l.Answers {
		f.b = binary.AppendUvarint(f.b, uint64(a.Tag))
		f.u64(uint64(a.Expires))
		f.n(len(a.IDs))
		for _, x := range a.IDs {
			f.u64(x)
		}
	}
}

// readSnapshot reads a snapshot from r, checking every frame's checksum and
// structure, and hands each frame's entries to visit (nil: check only). The
// ShardState passed to visit is reused for the next frame. The detector's
// state (version 4) is appended to det (nil: checked only).
func readSnapshot(r io.Reader, visit func(*memory.ShardState), det *store.DetectState) (snapInfo, error) {
	var info snapInfo
	var h [snapHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return info, fmt.Errorf("header: %w", errTorn)
	}
	if string(h[:8]) != snapMagic {
		return info, fmt.Errorf("not a warden snapshot (magic %q)", h[:8])
	}
	info.version = int(binary.LittleEndian.Uint32(h[8:]))
	info.bytes = snapHeader
	switch info.version {
	case 1, 2, 3, 4:
		return info, readFrames(r, &info, visit, det)
	default:
		return info, fmt.Errorf("version %d, this warden reads up to %d: %w", info.version, snapVersion, errVersion)
	}
}

// readFrames reads the frames of a version 1, 2, 3 or 4 snapshot (they
// differ in the link filters, and version 4 adds the detector's frames).
// A detector frame of a version 1-3 file is an unknown kind.
func readFrames(r io.Reader, info *snapInfo, visit func(*memory.ShardState), det *store.DetectState) error {
	var (
		buf     []byte
		st      memory.ShardState
		ids     []uint64
		tags    []uint32
		answers []memory.AnswerState
		err     error
	)
	for n := 0; ; n++ {
		buf, err = readFrame(r, buf, maxSnapFrame)
		if err == io.EOF {
			return fmt.Errorf("frame %d: %w (no end frame)", n, errTorn)
		}
		if err != nil {
			return fmt.Errorf("frame %d: %w", n, err)
		}
		info.bytes += int64(frameHeader + len(buf))
		d := dec{b: buf, end: info.bytes}
		kind := d.u8()
		if (n == 0) != (kind == frameMeta) {
			return fmt.Errorf("frame %d: kind %q out of place", n, kind)
		}
		st.Reset()
		ids, tags, answers = ids[:0], tags[:0], answers[:0]
		switch kind {
		case frameMeta:
			info.created = time.Unix(0, d.i64())
			copy(info.key[:], d.bytes(16))
			d.uv()
		case frameLimits:
			for range d.count(16) {
				st.Limits = append(st.Limits, memory.LimitState{Key: d.u64(), TAT: d.i64()})
			}
			info.limits += len(st.Limits)
		case frameBudgets:
			// Subjects go to one arena; a slice taken before it grows
			// keeps the old array, so it stays valid.
			for range d.count(26) {
				b := memory.BudgetState{Key: d.u64(), Start: d.i64(), Window: d.i64()}
				k := d.count(8)
				from := len(ids)
				for range k {
					ids = append(ids, d.u64())
				}
				b.Subjects = ids[from:len(ids):len(ids)]
				switch d.u8() {
				case 0:
				case 1:
					b.Sketch = d.bytes(memory.SketchRegisters)
				default:
					d.fail(errors.New("bad sketch flag"))
				}
				st.Budgets = append(st.Budgets, b)
			}
			info.budgets += len(st.Budgets)
		case frameLinks:
			for j := range d.count(42) {
				l := memory.LinkState{Key: d.u64()}
				l.Cur = d.gen(info.version, &ids, &tags)
				l.Old = d.gen(info.version, &ids, &tags)
				if info.version >= 3 {
					d.answers(j, &l, &ids, &answers)
				}
				st.Links = append(st.Links, l)
			}
			info.links += len(st.Links)
		case frameOffences, frameTracks:
			if info.version < 4 {
				d.fail(fmt.Errorf("unknown kind %q", kind))
				break
			}
			d.detect(kind, info, det)
		case frameEnd:
			lim, bud, lnk := d.uv(), d.uv(), d.uv()
			if d.err == nil && (lim != uint64(info.limits) || bud != uint64(info.budgets) || lnk != uint64(info.links)) {
				return fmt.Errorf("end frame counts %d limits, %d budgets, %d links; the file holds %d, %d, %d",
					lim, bud, lnk, info.limits, info.budgets, info.links)
			}
			if info.version >= 4 {
				off, trk := d.uv(), d.uv()
				if d.err == nil && (off != uint64(info.offences) || trk != uint64(info.tracks)) {
					return fmt.Errorf("end frame counts %d ban histories, %d detector tracks; the file holds %d, %d",
						off, trk, info.offences, info.tracks)
				}
			}
			if d.err == nil && len(d.b) == 0 {
				var one [1]byte
				if k, _ := io.ReadFull(r, one[:]); k != 0 {
					return errors.New("bytes after the end frame")
				}
				return nil
			}
		default:
			d.fail(fmt.Errorf("unknown kind %q", kind))
		}
		if d.err == nil && len(d.b) != 0 {
			d.fail(fmt.Errorf("%d bytes past the entries", len(d.b)))
		}
		if d.err != nil {
			return fmt.Errorf("frame %d (%q): %w", n, kind, d.err)
		}
		if visit != nil && st.Keys() > 0 {
			visit(&st)
		}
	}
}

// gen decodes one link generation of a version v snapshot; ids and tags
// may grow (their earlier slices stay valid: they keep the old array).
func (d *dec) gen(v int, ids *[]uint64, tags *[]uint32) memory.LinkGenState {
	g := memory.LinkGenState{First: d.i64(), Expires: d.i64()}
	form := d.u8()
	k := d.count(8)
	from := len(*ids)
	for range k {
		*ids = append(*ids, d.u64())
	}
	vals := (*ids)[from:len(*ids):len(*ids)]
	switch {
	case v >= 2 && form&^genFull == 0:
		g.Small, g.Full = vals, form&genFull != 0
		g.Prov = d.bytes(k)
		if v >= 3 {
			g.Tags = d.tags(k, tags)
		}
	case v == 1 && form == genSmall:
		g.Small = vals
	case v == 1 && form == genBits:
		g.Bits = vals
	default:
		d.fail(errors.New("bad generation form"))
	}
	return g
}

// tags decodes k answer tags (uvarints) into the arena.
func (d *dec) tags(k int, tags *[]uint32) []uint32 {
	from := len(*tags)
	for range k {
		*tags = append(*tags, d.tag())
	}
	return (*tags)[from:len(*tags):len(*tags)]
}

func (d *dec) tag() uint32 {
	at := d.pos()
	v := d.uv()
	if v > math.MaxUint32 {
		d.fail(fmt.Errorf("answer tag %d past 32 bits (byte %d)", v, at))
		return 0
	}
	return uint32(v)
}

// answers decodes link j's fan-out state (version 3) into l. Counts past
// the store's bounds (store.MaxFanoutAnswers answers,
// store.MaxFanoutLimit ids each) fail, naming where, before anything is
// allocated for them.
func (d *dec) answers(j int, l *memory.LinkState, ids *[]uint64, answers *[]memory.AnswerState) {
	l.Held = d.i64()
	if v, at, over := d.over(store.MaxFanoutAnswers); over {
		d.fail(fmt.Errorf("link %d: %d answers, at most %d (byte %d)", j, v, store.MaxFanoutAnswers, at))
	}
	n := d.count(10)
	from := len(*answers)
	for a := range n {
		as := memory.AnswerState{Tag: d.tag(), Expires: d.i64()}
		if v, at, over := d.over(store.MaxFanoutLimit); over {
			d.fail(fmt.Errorf("link %d answer %d: %d ids, at most %d (byte %d)", j, a, v, store.MaxFanoutLimit, at))
		}
		m := d.count(8)
		at := len(*ids)
		for range m {
			*ids = append(*ids, d.u64())
		}
		as.IDs = (*ids)[at:len(*ids):len(*ids)]
		*answers = append(*answers, as)
	}
	if n > 0 {
		l.Answers = (*answers)[from:len(*answers):len(*answers)]
	}
}

// snapshotFile writes a snapshot of src to path: aside first (path.tmp),
// synced, then renamed over path.
func snapshotFile(path string, src Source, det *store.DetectState, created time.Time) (snapInfo, error) {
	tmp := path + ".tmp"
	f, err := createAside(tmp)
	if err != nil {
		return snapInfo{}, fmt.Errorf("snapshot: create %s: %w", tmp, err)
	}
	info, err := writeSnapshot(f, src, det, created)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return info, fmt.Errorf("snapshot: write %s: %w", tmp, err)
	}
	if fi, err := f.Stat(); err == nil {
		info.bytes = fi.Size()
	}
	if err := finishAside(f, tmp, path); err != nil {
		os.Remove(tmp)
		return info, fmt.Errorf("snapshot: %w", err)
	}
	return info, nil
}
