package identify

import (
	"hash/maphash"
	"sync/atomic"
)

// internTable hands out one shared copy of strings seen again and again (app
// keys taken unverified), so the hot path need not allocate one per request. It
// is direct-mapped: a new string replaces whatever shared its slot, so memory
// stays bounded whatever the traffic, and lookups take no lock.
type internTable struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Pointer[string]
}

func newInternTable(slots int) *internTable { // slots: a power of two
	return &internTable{seed: maphash.MakeSeed(), mask: uint64(slots - 1), slots: make([]atomic.Pointer[string], slots)}
}

// str returns s, sharing a copy; s may alias a buffer that is reused later.
func (t *internTable) str(s string) string {
	slot := &t.slots[maphash.String(t.seed, s)&t.mask]
	if p := slot.Load(); p != nil && *p == s {
		return *p
	}
	c := string([]byte(s)) // a copy: s may alias the front's buffer
	slot.Store(&c)
	return c
}
