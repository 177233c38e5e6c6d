package ledger

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/klauspost/compress/zstd"
)

// encodeSegV3 is format 3's encoder, kept for tests only: a ledger sealed
// by an earlier warden must still read (TestFormat3Reads).
func encodeSegV3(p *partition, prev [32]byte, enc *zstd.Encoder) ([]byte, [32]byte) {
	if p.x == nil {
		p.buildIndex()
	}
	hot := p.x.appendHot(nil)
	raw := appendEntries(make([]byte, 0, 64*len(p.entries)), p.entries, p.hour)
	cold, rawLen := enc.EncodeAll(raw, nil), len(raw)
	out := make([]byte, 0, 256+len(hot)+len(cold))
	out = append(out, segMagicV3...)
	out = binary.AppendVarint(out, p.hour)
	out = binary.AppendVarint(out, p.minT)
	out = binary.AppendVarint(out, p.maxT)
	out = append(out, prev[:]...)
	for _, n := range p.sizes[:nsCountV3] {
		out = binary.AppendUvarint(out, uint64(n))
	}
	hotOff := uint64(len(out)+segHotFields+7) &^ 7
	for _, v := range []uint64{hotOff, uint64(len(hot)), uint64(rawLen), hotOff + uint64(len(hot)), uint64(len(cold))} {
		out = binary.LittleEndian.AppendUint64(out, v)
	}
	out = pad8(out)
	out = append(out, hot...)
	out = append(out, cold...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), sum
}

// appendEntries is format 3's cold part: the Accesses, length-prefixed.
func appendEntries(dst []byte, entries []entry, hour int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	var eb []byte
	for i := range entries {
		eb = appendEntry(eb[:0], &entries[i], hour*1e6)
		dst = binary.AppendUvarint(dst, uint64(len(eb)))
		dst = append(dst, eb...)
	}
	return pad8(dst)
}
