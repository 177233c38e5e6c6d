package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is a frame's length and checksum, each a little-endian uint32.
const frameHeader = 8

var (
	errTorn    = errors.New("torn frame (the file ends inside it)")
	errCorrupt = errors.New("checksum mismatch")
)

// appendFrame appends payload framed: length, CRC-32C of payload, payload.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// readFrame reads one frame into buf (grown as needed) and returns its
// payload. io.EOF means the input ended cleanly before a frame; errTorn that
// it ended inside one; errCorrupt a checksum mismatch or a length past max.
func readFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var h [frameHeader]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return buf, io.EOF
		}
		if err == io.ErrUnexpectedEOF && n > 0 {
			return buf, errTorn
		}
		return buf, err
	}
	n := binary.LittleEndian.Uint32(h[:4])
	if int64(n) > int64(max) {
		return buf, fmt.Errorf("frame of %d bytes (at most %d): %w", n, max, errCorrupt)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return buf, errTorn
		}
		return buf, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return buf, errCorrupt
	}
	return buf, nil
}

// dec reads a payload; the first problem sticks in err and later reads
// return zeros, so a decoder checks err once at the end. end is the
// payload's end as an offset in the file, for errors naming a position
// (0 when not told).
type dec struct {
	b   []byte
	err error
	end int64
}

// pos is the offset in the file of the next byte to read.
func (d *dec) pos() int64 { return d.end - int64(len(d.b)) }

var errShort = errors.New("payload ends early")

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *dec) u8() byte {
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) u32() uint32 {
	if len(d.b) < 4 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *dec) u64() uint64 {
	if len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *dec) i64() int64 { return int64(d.u64()) }

// count reads a uvarint count of items of at least size bytes each, and
// fails when the payload cannot hold that many.
func (d *dec) count(size int) int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	if v > uint64(len(d.b)/max(size, 1)) {
		d.fail(fmt.Errorf("count %d past the payload's end", v))
		return 0
	}
	return int(v)
}

// over looks at the next uvarint without reading it: whether it is past
// limit, its value and its offset in the file (for the caller's error).
func (d *dec) over(limit int) (v uint64, at int64, over bool) {
	v, n := binary.Uvarint(d.b)
	return v, d.pos(), n > 0 && v > uint64(limit)
}

func (d *dec) uv() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string { return string(d.bytes(d.count(1))) }

func appendStr(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}
