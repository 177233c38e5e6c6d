package memory

// subjectSet is a budget's exact set of subjects: open addressing with
// linear probing over mixed ids. A look-up touches one or two cache lines,
// where a binary search of a sorted slice of 1,024 touched about ten, and an
// insert moves nothing.
type subjectSet struct {
	slots []uint64 // 0 marks an empty slot; subject 0 is held by zero
	n     int      // subjects held in slots
	zero  bool
}

// minSlots is a set's first table: 4 slots, 32 bytes.
const minSlots = 4

func (s *subjectSet) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

func (s *subjectSet) has(x uint64) bool {
	if x == 0 {
		return s.zero
	}
	if len(s.slots) == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := mix64(x) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case x:
			return true
		case 0:
			return false
		}
	}
}

// add inserts x, which the set does not hold.
func (s *subjectSet) add(x uint64) {
	if x == 0 {
		s.zero = true
		return
	}
	if (s.n+1)*4 > len(s.slots)*3 { // keep the load at most 3/4
		s.grow()
	}
	s.put(x)
	s.n++
}

func (s *subjectSet) put(x uint64) {
	mask := uint64(len(s.slots) - 1)
	i := mix64(x) & mask
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = x
}

func (s *subjectSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(minSlots, 2*len(old)))
	for _, x := range old {
		if x != 0 {
			s.put(x)
		}
	}
}

// each calls f with every subject, in no particular order.
func (s *subjectSet) each(f func(uint64)) {
	if s.zero {
		f(0)
	}
	for _, x := range s.slots {
		if x != 0 {
			f(x)
		}
	}
}

// reset empties the set for a new window, keeping its table.
func (s *subjectSet) reset() {
	clear(s.slots)
	s.n, s.zero = 0, false
}

// bytes is the memory the set holds.
func (s *subjectSet) bytes() int64 { return 8 * int64(len(s.slots)) }
