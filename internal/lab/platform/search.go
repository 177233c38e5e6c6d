package platform

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"sync"
)

// searchIndex holds profile ids 1..N sorted by username and by lower-case
// full name (ties by id), so a prefix is one contiguous range of each. The
// strings themselves are derived again when compared: 8 bytes per profile.
type searchIndex struct {
	byUser []int32
	byName []int32
}

func buildSearch(g *gen, n int) *searchIndex {
	s := &searchIndex{}
	var wg sync.WaitGroup
	wg.Go(func() { s.byUser = sortUsernames(g, n) })
	wg.Go(func() { s.byName = sortFullNames(g, n) })
	wg.Wait()
	return s
}

// sortFullNames: "first last" in lower case orders exactly as the pair
// (first, last) does, because ' ' sorts before every letter. So each id
// becomes one integer key (rank of first, rank of last, id).
func sortFullNames(g *gen, n int) []int32 {
	firstRank, lastRank := ranks(firstLower), ranks(lastLower)
	keys := make([]uint64, n)
	for i := range keys {
		id := i + 1
		keys[i] = uint64(firstRank[g.first(id)])<<48 | uint64(lastRank[g.last(id)])<<32 | uint64(id)
	}
	slices.Sort(keys)
	ids := make([]int32, n)
	for i, k := range keys {
		ids[i] = int32(uint32(k))
	}
	return ids
}

// ranks maps a word list index to the word's place in sorted order.
func ranks(words []string) []int {
	order := make([]int, len(words))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(words[a], words[b]) })
	r := make([]int, len(words))
	for place, i := range order {
		r[i] = place
	}
	return r
}

// sortUsernames sorts by the first 32 bytes of each username packed into
// four big-endian words (zero padding sorts a shorter name first, as
// strings do); usernames are shorter than that, and longer ones fall back
// to comparing the strings.
func sortUsernames(g *gen, n int) []int32 {
	type entry struct {
		k  [4]uint64
		id int32
	}
	es := make([]entry, n)
	var buf [64]byte
	for i := range es {
		id := i + 1
		u := g.appendUsername(buf[:0], id)
		var pad [32]byte
		copy(pad[:], u)
		es[i].id = int32(id)
		for w := range 4 {
			es[i].k[w] = binary.BigEndian.Uint64(pad[w*8:])
		}
	}
	slices.SortFunc(es, func(a, b entry) int {
		for w := range 4 {
			if c := cmp.Compare(a.k[w], b.k[w]); c != 0 {
				return c
			}
		}
		var ba, bb [64]byte
		return bytes.Compare(g.appendUsername(ba[:0], int(a.id)), g.appendUsername(bb[:0], int(b.id)))
	})
	ids := make([]int32, n)
	for i, e := range es {
		ids[i] = e.id
	}
	return ids
}

// prefixRange returns [lo, hi) of the ids in order whose key starts with q.
func prefixRange(order []int32, key func([]byte, int) []byte, q []byte) (int, int) {
	var buf [96]byte
	lo := sort.Search(len(order), func(i int) bool {
		return bytes.Compare(key(buf[:0], int(order[i])), q) >= 0
	})
	hi := lo + sort.Search(len(order)-lo, func(i int) bool {
		return !bytes.HasPrefix(key(buf[:0], int(order[lo+i])), q)
	})
	return lo, hi
}

// page returns up to limit ids matching q: first the username matches in
// username order (phase 0), then the full-name matches whose username does
// not match (phase 1), so each profile appears once. at is the position to
// start from; next is the position after the page, or done.
func (s *searchIndex) page(g *gen, q []byte, at searchPos, limit int) (ids []int, next searchPos, done bool) {
	var buf [96]byte
	uLo, uHi := prefixRange(s.byUser, g.appendUsername, q)
	nLo, nHi := prefixRange(s.byName, g.appendFullNameLower, q)
	pos := at
	for len(ids) < limit {
		if pos.phase == 0 {
			i := uLo + pos.index
			if i >= uHi {
				pos = searchPos{phase: 1}
				continue
			}
			ids = append(ids, int(s.byUser[i]))
			pos.index++
			continue
		}
		i := nLo + pos.index
		if i >= nHi {
			return ids, pos, true
		}
		pos.index++
		id := int(s.byName[i])
		if !bytes.HasPrefix(g.appendUsername(buf[:0], id), q) {
			ids = append(ids, id)
		}
	}
	// Done early if nothing is left after this page.
	if pos.phase == 0 && uLo+pos.index >= uHi && nLo >= nHi {
		return ids, pos, true
	}
	if pos.phase == 1 && nLo+pos.index >= nHi {
		return ids, pos, true
	}
	return ids, pos, false
}

type searchPos struct {
	phase int
	index int
}
