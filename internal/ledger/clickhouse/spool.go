package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// spool is a directory of batches waiting for ClickHouse, one file each
// (NNNNNNNNNNNNNNNN.batch, by a sequence: the oldest has the lowest), each
// written aside, fsynced and renamed, so a crash leaves whole batches.
// File: magic, id, day, Accesses, done, unsure, per table its row count,
// length and rows, then a CRC-32C of what follows the magic.
type spool struct {
	dir   string
	max   int64
	m     *Metrics
	mu    sync.Mutex
	files []string // sorted
	sizes map[string]int64
	bytes int64
	seq   uint64
	lock  *os.File // flock'd: one sink per spool
}

const spoolMagic = "WCHSPL1\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func openSpool(dir string, maxBytes int64, m *Metrics) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("clickhouse: spool: %w", err)
	}
	// Two gateways on one spool would number their batches alike and
	// write over each other's (Accesses lost), and each remove the
	// other's files being written: a lock keeps the second out, as
	// ledger.dir and store.memory.dir do.
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("clickhouse: spool %s is in use by another warden (each gateway needs a spool.dir of its own): %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("clickhouse: spool: %w", err)
	}
	s := &spool{dir: dir, max: maxBytes, m: m, sizes: map[string]int64{}, lock: lock}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		stem, ok := strings.CutSuffix(name, ".batch")
		if !ok || len(stem) != 16 {
			continue
		}
		var seq uint64
		if _, err := fmt.Sscanf(stem, "%016x", &seq); err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.files = append(s.files, name)
		s.sizes[name] = info.Size()
		s.bytes += info.Size()
		s.seq = max(s.seq, seq)
	}
	slices.Sort(s.files)
	s.gauge()
	return s, nil
}

// close releases the spool's lock; the spool is not used after.
func (s *spool) close() { s.lock.Close() }

func (s *spool) gauge() {
	s.m.spoolBytes.Set(float64(s.bytes))
	s.m.spooled.Set(float64(len(s.files)))
}

func (s *spool) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files)
}

func (s *spool) oldest() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 {
		return "", false
	}
	return s.files[0], true
}

// batchPieces is b as a spool file, in pieces written one after the
// other: the header, each table's count, length and rows, and the
// checksum. The rows are b's own, not copied (a batch is tens of
// megabytes).
func batchPieces(b *batch) [][]byte {
	head := make([]byte, 0, len(spoolMagic)+22)
	head = append(head, spoolMagic...)
	head = binary.LittleEndian.AppendUint64(head, b.id)
	head = binary.LittleEndian.AppendUint64(head, uint64(b.day))
	head = binary.LittleEndian.AppendUint32(head, uint32(b.n))
	head = append(head, b.done, byte(b.unsure))
	pieces := [][]byte{head}
	sum := crc32.Update(0, castagnoli, head[len(spoolMagic):])
	for t := range nTables {
		h := binary.LittleEndian.AppendUint32(make([]byte, 0, 12), uint32(b.count[t]))
		h = binary.LittleEndian.AppendUint64(h, uint64(len(b.rows[t])))
		sum = crc32.Update(sum, castagnoli, h)
		sum = crc32.Update(sum, castagnoli, b.rows[t])
		pieces = append(pieces, h, b.rows[t])
	}
	return append(pieces, binary.LittleEndian.AppendUint32(nil, sum))
}

func decodeBatch(raw []byte) (*batch, error) {
	if len(raw) < len(spoolMagic)+26+4 || string(raw[:len(spoolMagic)]) != spoolMagic {
		return nil, errors.New("not a spooled batch")
	}
	body, sum := raw[len(spoolMagic):len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	b := &batch{id: binary.LittleEndian.Uint64(body), day: int64(binary.LittleEndian.Uint64(body[8:])),
		n: int(binary.LittleEndian.Uint32(body[16:])), done: body[20], unsure: int8(body[21])}
	p := body[22:]
	for t := range nTables {
		if len(p) < 12 {
			return nil, errors.New("cut short")
		}
		b.count[t] = int(binary.LittleEndian.Uint32(p))
		n := binary.LittleEndian.Uint64(p[4:])
		p = p[12:]
		if uint64(len(p)) < n {
			return nil, errors.New("cut short")
		}
		b.rows[t], p = p[:n], p[n:]
	}
	return b, nil
}

// put writes b as the newest file; past the spool's size it refuses.
func (s *spool) put(b *batch) error {
	pieces := batchPieces(b)
	size := 0
	for _, p := range pieces {
		size += len(p)
	}
	s.mu.Lock()
	if s.bytes+int64(size) > s.max {
		s.mu.Unlock()
		return fmt.Errorf("spool %s full (%d of %d bytes)", s.dir, s.bytes, s.max)
	}
	s.seq++
	name := fmt.Sprintf("%016x.batch", s.seq)
	s.bytes += int64(size) // reserved while written
	s.mu.Unlock()
	if err := writeAside(filepath.Join(s.dir, name), pieces...); err != nil {
		s.mu.Lock()
		s.bytes -= int64(size)
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.files = append(s.files, name)
	slices.Sort(s.files)
	s.sizes[name] = int64(size)
	s.gauge()
	s.mu.Unlock()
	b.file = name
	return nil
}

// update rewrites b's file with its progress (tables done, the unsure one).
func (s *spool) update(b *batch) {
	writeAside(filepath.Join(s.dir, b.file), batchPieces(b)...)
}

// load reads the batch in file name into a buffer from get.
func (s *spool) load(name string, get func(int) []byte) (*batch, error) {
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	raw := get(int(info.Size()))[:info.Size()]
	if _, err := io.ReadFull(f, raw); err != nil {
		return nil, err
	}
	b, err := decodeBatch(raw)
	if err != nil {
		return nil, err
	}
	b.file, b.own = name, [][]byte{raw}
	return b, nil
}

func (s *spool) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.files, name); i >= 0 {
		s.files = slices.Delete(s.files, i, i+1)
	}
	s.bytes -= s.sizes[name]
	delete(s.sizes, name)
	s.gauge()
}

func (s *spool) remove(name string) {
	os.Remove(filepath.Join(s.dir, name))
	s.forget(name)
}

// setAside keeps an unreadable file beside the spool, out of its way.
func (s *spool) setAside(name string) {
	os.Rename(filepath.Join(s.dir, name), filepath.Join(s.dir, name+".bad"))
	s.forget(name)
}

func writeAside(path string, pieces ...[]byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("clickhouse: spool: %w", err)
	}
	for _, data := range pieces {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("clickhouse: spool: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("clickhouse: spool: %w", err)
	}
	f.Close()
	return os.Rename(tmp, path)
}
