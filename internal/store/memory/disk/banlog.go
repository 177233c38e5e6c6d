package disk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// The ban log's file header: magic, then the format version (uint32 LE) and
// four reserved zero bytes.
const (
	banLogMagic   = "WARDNBAN"
	banLogVersion = 1
	banLogHeader  = 16
	maxBanRecord  = 64 << 10

	opPut    = 'P'
	opRemove = 'R'
)

// banLog is the append-only, checksummed log of ban changes.
type banLog struct {
	path string

	mu      sync.Mutex
	f       *os.File
	size    int64 // bytes up to the end of the last whole record
	records int
	buf     []byte
	broken  error // a failed write could not be undone: refuse further writes
}

// replayed is what reading the log found.
type replayed struct {
	bans    map[store.BanKey]store.Ban // the state the log ends in
	records int
	cut     int64  // bytes cut from a torn or corrupt tail (0: none)
	keptAt  string // where the cut bytes were kept
	why     error  // what was wrong at the cut
}

func banLogHeaderBytes() []byte {
	h := make([]byte, banLogHeader)
	copy(h, banLogMagic)
	binary.LittleEndian.PutUint32(h[8:], banLogVersion)
	return h
}

// openBanLog reads the log at path, cuts a torn or corrupt tail (keeping
// the cut bytes beside it), and opens it for appending. A missing log is
// created.
func openBanLog(path string, now time.Time) (*banLog, replayed, error) {
	rep := replayed{bans: map[store.BanKey]store.Ban{}}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, rep, fmt.Errorf("ban log: open %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, rep, fmt.Errorf("ban log: chmod %s: %w", path, err)
	}
	good, err := replay(bufio.NewReaderSize(f, 1<<16), &rep)
	if err != nil && !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) && !errors.Is(err, errBadRecord) {
		f.Close()
		return nil, rep, fmt.Errorf("ban log: read %s: %w", path, err)
	}
	end, serr := f.Seek(0, io.SeekEnd)
	if serr != nil {
		f.Close()
		return nil, rep, fmt.Errorf("ban log: %s: %w", path, serr)
	}
	if end > good {
		rep.cut, rep.why = end-good, err
		rep.keptAt = fmt.Sprintf("%s.tail-%d", path, now.UnixNano())
		if err := keepTail(f, good, end, rep.keptAt); err != nil {
			f.Close()
			return nil, rep, fmt.Errorf("ban log: keep the tail of %s: %w", path, err)
		}
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, rep, fmt.Errorf("ban log: cut %s at %d: %w", path, good, err)
		}
	}
	l := &banLog{path: path, f: f, size: good, records: rep.records}
	if good == 0 {
		if _, err := f.WriteAt(banLogHeaderBytes(), 0); err != nil {
			f.Close()
			return nil, rep, fmt.Errorf("ban log: write header %s: %w", path, err)
		}
		l.size = banLogHeader
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, rep, fmt.Errorf("ban log: sync %s: %w", path, err)
	}
	if _, err := f.Seek(l.size, io.SeekStart); err != nil {
		f.Close()
		return nil, rep, fmt.Errorf("ban log: %s: %w", path, err)
	}
	return l, rep, nil
}

var errBadRecord = errors.New("bad ban record")

// replay applies every whole record to rep and returns the offset after the
// last good one (0 when even the header is bad).
func replay(r io.Reader, rep *replayed) (int64, error) {
	return eachRecord(r, func(op byte, b store.Ban) {
		if op == opPut {
			rep.bans[b.Key()] = b
		} else {
			delete(rep.bans, b.Key())
		}
		rep.records++
	})
}

// eachRecord calls fn with every whole record of the log r, in order, and
// returns the offset after the last good one (0 when even the header is
// bad) and what stopped it short of the end.
func eachRecord(r io.Reader, fn func(op byte, b store.Ban)) (int64, error) {
	var h [banLogHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return 0, nil
		}
		return 0, errTorn
	}
	if string(h[:8]) != banLogMagic {
		return 0, fmt.Errorf("not a ban log (magic %q): %w", h[:8], errBadRecord)
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != banLogVersion {
		return 0, fmt.Errorf("ban log version %d, this warden reads %d: %w", v, banLogVersion, errBadRecord)
	}
	good := int64(banLogHeader)
	var buf []byte
	for {
		var err error
		buf, err = readFrame(r, buf, maxBanRecord)
		if err == io.EOF {
			return good, nil
		}
		if err != nil {
			return good, err
		}
		op, b, err := decodeBan(buf)
		if err != nil {
			return good, err
		}
		fn(op, b)
		good += int64(frameHeader + len(buf))
	}
}

// keepTail copies [from, to) of f to a new file at path.
func keepTail(f *os.File, from, to int64, path string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(f, from, to-from)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// banAnonymous is the put record's flags bit for store.Ban.Anonymous.
const banAnonymous = 1

// appendBan encodes one record's payload: op, facet, value, then for a
// put: reason, by, created and until (Unix ns, 0 for none), and a flags
// byte only when a flag is set (banAnonymous), so a ban without flags is
// written as before and logs written before the flags read unchanged.
func appendBan(dst []byte, op byte, b store.Ban) []byte {
	dst = append(dst, op)
	dst = appendStr(appendStr(dst, b.Facet), b.Value)
	if op == opPut {
		dst = appendStr(appendStr(dst, b.Reason), b.By)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(store.UnixNano(b.Created)))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(store.UnixNano(b.Until)))
		if b.Anonymous {
			dst = append(dst, banAnonymous)
		}
	}
	return dst
}

func decodeBan(p []byte) (byte, store.Ban, error) {
	d := dec{b: p}
	op := d.u8()
	var b store.Ban
	b.Facet, b.Value = d.str(), d.str()
	switch op {
	case opPut:
		b.Reason, b.By = d.str(), d.str()
		b.Created, b.Until = store.TimeOf(d.i64()), store.TimeOf(d.i64())
		if d.err == nil && len(d.b) == 1 {
			flags := d.u8()
			if flags&^banAnonymous != 0 {
				d.fail(fmt.Errorf("ban flags %#x", flags))
			}
			b.Anonymous = flags&banAnonymous != 0
		}
	case opRemove:
	default:
		d.fail(fmt.Errorf("op %q", op))
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d bytes after the record", len(d.b)))
	}
	if d.err != nil {
		return 0, b, fmt.Errorf("%w: %v", errBadRecord, d.err)
	}
	return op, b, nil
}

// append writes one record and syncs it to disk before returning. A write
// that fails is cut off again, so the next record follows a whole one.
func (l *banLog) append(op byte, b store.Ban) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	if l.f == nil {
		return errors.New("ban log: closed")
	}
	l.buf = appendFrame(l.buf[:0], appendBan(nil, op, b))
	if len(l.buf)-frameHeader > maxBanRecord {
		return fmt.Errorf("ban log: record of %d bytes (at most %d)", len(l.buf)-frameHeader, maxBanRecord)
	}
	_, err := l.f.Write(l.buf)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		if terr := l.undo(); terr != nil {
			l.broken = fmt.Errorf("ban log: %s unusable after a failed write (%v): %w", l.path, err, terr)
		}
		return fmt.Errorf("ban log: write %s: %w", l.path, err)
	}
	l.size += int64(len(l.buf))
	l.records++
	return nil
}

func (l *banLog) undo() error {
	if err := l.f.Truncate(l.size); err != nil {
		return err
	}
	_, err := l.f.Seek(l.size, io.SeekStart)
	return err
}

// stats returns the records and bytes in the log.
func (l *banLog) stats() (int, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records, l.size
}

// rewrite replaces the log with one put per ban unexpired at now: written
// aside, synced, renamed over the log. Callers keep bans from changing.
func (l *banLog) rewrite(bans []store.Ban, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tmp := l.path + ".tmp"
	var w bytes.Buffer
	w.Write(banLogHeaderBytes())
	n := 0
	var p []byte
	for _, b := range bans {
		if !b.Until.IsZero() && !b.Until.After(now) {
			continue
		}
		p = appendBan(p[:0], opPut, b)
		w.Write(appendFrame(nil, p))
		n++
	}
	if err := writeAside(tmp, l.path, w.Bytes()); err != nil {
		return fmt.Errorf("ban log: rewrite: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("ban log: reopen %s: %w", l.path, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("ban log: reopen %s: %w", l.path, err)
	}
	l.f.Close()
	l.f, l.size, l.records, l.broken = f, int64(w.Len()), n, nil
	return nil
}

func (l *banLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// PutBan and RemoveBan make the log a memory.BanJournal.
func (l *banLog) PutBan(_ context.Context, b store.Ban) error { return l.append(opPut, b) }
func (l *banLog) RemoveBan(_ context.Context, k store.BanKey) error {
	return l.append(opRemove, store.Ban{Facet: k.Facet, Value: k.Value})
}

// writeAside writes data to tmp, syncs it, renames it to path and syncs
// the directory, so path holds either the old file or the new one whole.
func writeAside(tmp, path string, data []byte) error {
	f, err := createAside(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return finishAside(f, tmp, path)
}

func finishAside(f *os.File, tmp, path string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
