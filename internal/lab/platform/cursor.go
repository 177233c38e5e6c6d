package platform

import (
	"encoding/base64"
	"encoding/binary"
)

// Cursors are opaque to clients: base64url of (kind, unsigned varints,
// 4-byte keyed check). The check rejects cursors that were edited or made
// for another list.
const (
	curFollowers byte = 'r'
	curFollowing byte = 'g'
	curPosts     byte = 'p'
	curSearch    byte = 's'
	curFeed      byte = 'f'
)

func (g *gen) cursorCheck(payload []byte) uint32 {
	x := g.key ^ tagCursor
	for _, c := range payload {
		x = mix(x ^ uint64(c))
	}
	return uint32(x)
}

func (g *gen) encodeCursor(kind byte, vals ...uint64) string {
	b := make([]byte, 0, 1+len(vals)*binary.MaxVarintLen64+4)
	b = append(b, kind)
	for _, v := range vals {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.BigEndian.AppendUint32(b, g.cursorCheck(b))
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor fills vals from s; false if s is not a cursor of this kind
// with exactly len(vals) values made by this platform.
func (g *gen) decodeCursor(s string, kind byte, vals []uint64) bool {
	if len(s) > 128 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 5 || b[0] != kind {
		return false
	}
	payload := b[:len(b)-4]
	if binary.BigEndian.Uint32(b[len(b)-4:]) != g.cursorCheck(payload) {
		return false
	}
	rest := payload[1:]
	for i := range vals {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return false
		}
		vals[i], rest = v, rest[n:]
	}
	return len(rest) == 0
}
