//go:build !amd64 && !arm64

package ledger

import "unsafe"

// prefetchLine does nothing here: the look-ups it would read ahead for
// simply wait for their cache misses.
func prefetchLine(p unsafe.Pointer) {}
