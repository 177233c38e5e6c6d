package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Frame kinds.
const (
	kindHeader byte = 1 // version u8, hour unix seconds varint
	kindDict   byte = 2 // namespace u8, the string
	kindAccess byte = 3 // an encoded entry
)

const (
	frameHead    = 8       // len u32, crc u32
	maxFrameBody = 4 << 20 // an Access is far smaller; a larger length is corruption
	walVersion   = 1
)

// errTorn marks a frame that is cut short or does not check: where a log's
// valid part ends.
var errTorn = errors.New("torn or corrupt frame")

// wholeFramesAfter looks in b past from (where a log's frames stopped
// checking) for whole frames: one that checks followed by another that
// does, or ending b. A stop cuts a log's tail, a gateway still writing
// leaves its last frame short, and neither leaves a whole frame after the
// short one: whole frames there are damage in the middle of the log. One
// frame checking by chance at a random offset is 1 in 2^32 (its CRC32C);
// two in a row is not what chance gives. at is where the first starts.
func wholeFramesAfter(b []byte, from int) (at int, ok bool) {
	for off := from + 1; off+frameHead < len(b); off++ {
		// The kind byte first: 3 values of 256, before a checksum is taken.
		if k := b[off+frameHead]; k < kindHeader || k > kindAccess {
			continue
		}
		_, _, n, err := nextFrame(b[off:])
		if err != nil {
			continue
		}
		if off+n == len(b) {
			return off, true
		}
		if _, _, _, err := nextFrame(b[off+n:]); err == nil {
			return off, true
		}
	}
	return 0, false
}

// logDamage says whether a log whose frames stopped checking at valid
// (why: readLog's) is damaged rather than torn: a frame that checks but
// does not decode, or whole frames after the one that does not check.
// nil for a whole log or a torn tail (what a stop, or a write still in
// progress, leaves).
func logDamage(path string, b []byte, valid int, why error) error {
	if valid >= len(b) || why == nil {
		return nil
	}
	if !errors.Is(why, errTorn) {
		return fmt.Errorf("ledger: %s: damaged: %w (its Accesses after byte %d are not read: warden ledger verify)", path, why, valid)
	}
	if at, ok := wholeFramesAfter(b, valid); ok {
		return fmt.Errorf("ledger: %s: damaged: the frame at byte %d does not check and whole frames follow it from byte %d (not a torn tail: %d bytes of Accesses after the damage are not read; warden ledger verify)", path, valid, at, len(b)-at)
	}
	return nil
}

// appendFrame appends one frame of kind with body. The checksum is taken
// over the frame where it lies in dst: a kind byte of its own would be
// allocated per frame (crc32 calls through a function value, so what it
// is given escapes).
func appendFrame(dst []byte, kind byte, body []byte) []byte {
	at := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)+1))
	dst = append(dst, 0, 0, 0, 0, kind)
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Update(0, castagnoli, dst[at+frameHead:]))
	return dst
}

// countAccessFrames counts the Access frames in b, frames appendFrame
// made (their lengths are not checked again).
func countAccessFrames(b []byte) int {
	n := 0
	for len(b) >= frameHead+1 {
		size := frameHead + int(binary.LittleEndian.Uint32(b))
		if size > len(b) {
			break
		}
		if b[frameHead] == kindAccess {
			n++
		}
		b = b[size:]
	}
	return n
}

// nextFrame reads the frame at the start of b: its kind, body and size.
// errTorn when b holds no whole, checking frame.
func nextFrame(b []byte) (kind byte, body []byte, size int, err error) {
	if len(b) < frameHead+1 {
		return 0, nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b[0:])
	if n < 1 || n > maxFrameBody || uint64(len(b)-frameHead) < uint64(n) {
		return 0, nil, 0, errTorn
	}
	payload := b[frameHead : frameHead+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, 0, errTorn
	}
	return payload[0], payload[1:], frameHead + int(n), nil
}

// header frame body.
func headerBody(hour int64) []byte {
	b := []byte{walVersion}
	return binary.AppendVarint(b, hour)
}

func parseHeader(body []byte) (int64, error) {
	if len(body) < 2 || body[0] != walVersion {
		return 0, fmt.Errorf("header: unknown version")
	}
	h, n := binary.Varint(body[1:])
	if n <= 0 {
		return 0, fmt.Errorf("header: bad hour")
	}
	return h, nil
}
