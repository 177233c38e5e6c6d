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
