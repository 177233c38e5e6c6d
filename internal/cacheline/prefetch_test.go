package cacheline

import (
	"testing"
	"unsafe"
)

// A prefetch never faults and changes nothing: of nil, of memory past an
// allocation's end, and over a whole value.
func TestPrefetchChangesNothing(t *testing.T) {
	b := make([]byte, 3*Size+5)
	for i := range b {
		b[i] = byte(i)
	}
	Prefetch(nil)
	Prefetch(unsafe.Add(unsafe.Pointer(&b[0]), 1<<20))
	Range(unsafe.Pointer(&b[0]), uintptr(len(b)))
	Range(unsafe.Pointer(&b[0]), 0)
	for i := range b {
		if b[i] != byte(i) {
			t.Fatalf("byte %d changed to %d", i, b[i])
		}
	}
}
