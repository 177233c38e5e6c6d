package ledger

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// zstdMaxRatio is the most zstd can expand its input: a block of four
// bytes (a three-byte header and the byte an RLE block repeats) stands for
// up to 128 KiB.
const zstdMaxRatio = (128 << 10) / 4

// newDecoder is the ledger's zstd decoder, for decodeSized only: every
// DecodeAll stops at its destination's capacity, so a frame that declares
// or makes more than the directory said cannot grow it.
func newDecoder(concurrency int) (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(concurrency), zstd.WithDecoderMaxMemory(maxSegRaw), zstd.WithDecodeAllCapLimit(true))
}

// decodeSized decompresses z, which the file's own directory says holds
// want bytes, into buf when it has room. A damaged file never makes a
// reader allocate more than want, nor want more than zstd could make of
// len(z) bytes: a 1.5 KB section whose frame said 4 GiB once allocated
// 4 GiB per block read (FuzzParseSeg). dec must come from newDecoder.
func decodeSized(dec *zstd.Decoder, z []byte, want uint64, buf []byte) ([]byte, error) {
	if want > zstdMaxRatio*uint64(len(z)) {
		return nil, fmt.Errorf("%d compressed bytes cannot hold the %d the directory says", len(z), want)
	}
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		return nil, fmt.Errorf("zstd frame: %w", err)
	}
	if h.HasFCS && h.FrameContentSize != want {
		return nil, fmt.Errorf("zstd frame holds %d bytes, the directory says %d", h.FrameContentSize, want)
	}
	if uint64(cap(buf)) < want {
		buf = make([]byte, 0, want)
	}
	raw, err := dec.DecodeAll(z, buf[:0])
	if err != nil {
		return nil, err
	}
	if uint64(len(raw)) != want {
		return nil, fmt.Errorf("%d bytes, the directory says %d", len(raw), want)
	}
	return raw, nil
}
