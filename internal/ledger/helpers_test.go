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
	e, err := newSealEncoder()
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

// dirTuples is dir's shared dictionary's tuples.
func dirTuples(t testing.TB, dir string) *strtab {
	d, err := loadDictionary(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &d.t[nsTuple]
}

// tuplesIn is the tuple of each entry in dir's shared dictionary.
func tuplesIn(t testing.TB, dir string, es []entry) []uint32 {
	d, err := loadDictionary(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tuplesOf(es, func(key []byte) uint32 {
		v, ok := d.t[nsTuple].find(string(key))
		if !ok {
			t.Fatalf("tuple %x not in the dictionary", key)
		}
		return v
	})
}
