package cacheline

import "unsafe"

// Size is the cache line size Range steps by: 64 bytes on the amd64 and
// arm64 processors warden runs on (a larger line is only prefetched more
// than once).
const Size = 64

// Range prefetches every cache line of the n bytes at p.
func Range(p unsafe.Pointer, n uintptr) {
	for off := uintptr(0); off < n; off += Size {
		Prefetch(unsafe.Add(p, off))
	}
}
