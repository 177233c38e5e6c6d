//go:build amd64 || arm64

package cacheline

import "unsafe"

// Prefetch asks the processor to load the cache line at p and returns at
// once (PREFETCHT0, PRFM): unlike a load, it does not hold the
// instructions after it until the line arrives, so that the ledger's Add
// and sealer issue the cache misses of many look-ups ahead and they
// overlap (ledger/dict.go: prefetch, internMany, rehash), and the gateway
// fetches a pooled Access box while it reads the answer. p need not be
// valid memory: a prefetch never faults.
//
//go:noescape
func Prefetch(p unsafe.Pointer)
