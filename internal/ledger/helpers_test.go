package ledger

import (
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func mustDecoder(t testing.TB) *zstd.Decoder {
	d, err := newDecoder(1)
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

// must is v, or the test stops on err: must(r.WhoTook(...))(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// must2 is must for two values (Viewers').
func must2[A, B any](a A, b B, err error) func(testing.TB) (A, B) {
	return func(t testing.TB) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// verifyProblem runs Verify on dir and wants exactly one problem, naming
// path; what says which edit the caller made.
func verifyProblem(t *testing.T, dir, path, what string) string {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], path) {
		t.Fatalf("%s: %+v", what, rep.Problems)
	}
	return rep.Problems[0]
}
