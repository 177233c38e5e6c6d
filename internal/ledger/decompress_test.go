package ledger

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestDecodeSized: what the directory says is what is decoded, and a
// damaged size or frame is an error that allocates next to nothing (a
// 1.5 KB section once made a reader allocate 4 GiB a block).
func TestDecodeSized(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec := mustDecoder(t)
	zeros := make([]byte, 1<<20)
	small := enc.EncodeAll(zeros[:16<<10], nil) // far more than 64 to 1
	big := enc.EncodeAll(zeros, nil)
	text := bytes.Repeat([]byte("who took what, "), 1000)
	plain := enc.EncodeAll(text, nil)

	for _, c := range []struct {
		name string
		z    []byte
		want uint64
		out  []byte
	}{
		{"zeros", small, 16 << 10, zeros[:16<<10]},
		{"text", plain, uint64(len(text)), text},
		{"text into a buffer", plain, uint64(len(text)), text},
	} {
		raw, err := decodeSized(dec, c.z, c.want, make([]byte, 0, 10))
		if err != nil || !bytes.Equal(raw, c.out) {
			t.Fatalf("%s: %d bytes, %v", c.name, len(raw), err)
		}
	}

	allocs := func(name string, z []byte, want uint64) {
		t.Helper()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		raw, err := decodeSized(dec, z, want, nil)
		runtime.ReadMemStats(&m1)
		if err == nil {
			t.Fatalf("%s: decoded %d bytes, want an error", name, len(raw))
		}
		if a := m1.TotalAlloc - m0.TotalAlloc; a > 256<<10 {
			t.Errorf("%s: %v, after allocating %d bytes", name, err, a)
		}
	}
	allocs("a size zstd cannot make of the bytes", small, 1<<30)
	allocs("a size the frame does not declare", big, 16<<10)
	allocs("a second frame past the size", append(append([]byte{}, small...), big...), 16<<10)
	allocs("no frame", []byte("not zstd at all"), 10)
}
