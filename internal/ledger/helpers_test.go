package ledger

import (
	"crypto/sha256"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func mustDecoder(t testing.TB) *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func mustEncoder(t testing.TB) *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func appendHash(b []byte) []byte {
	s := sha256.Sum256(b)
	return append(b, s[:]...)
}

func readFileOrNil(path string) ([]byte, error) { return os.ReadFile(path) }
