//go:build !amd64 && !arm64

package cacheline

import "unsafe"

// Prefetch does nothing here: the reads it would start early simply wait
// for their cache misses.
func Prefetch(p unsafe.Pointer) {}
