//go:build amd64 || arm64

package ledger

import "unsafe"

// prefetchLine asks the processor to load the cache line at p and returns
// at once (PREFETCHT0, PRFM): unlike a load, it does not hold the
// instructions after it until the line arrives, so that Add and the
// sealer issue the cache misses of many look-ups ahead and they overlap
// (dict.go: prefetch, internMany, rehash). p need not be valid memory: a
// prefetch never faults.
//
//go:noescape
func prefetchLine(p unsafe.Pointer)
