package canary

import (
	"encoding/binary"
	"math"

	"github.com/warden-gw/warden/internal/identify"
)

// A list record is an anchor when a keyed hash of (route, list, record)
// says so, the same for every identity: the anchor's slot carries one
// canary, inserted before it. Whether an identity is shown the slot's
// canary is the identity's symbol of a Tardos code: a keyed hash of
// (identity, slot, time bucket) under the slot's bias p, p drawn once per
// slot from the arcsine density on [cutoff, 1-cutoff]. A fleet that
// compares the lists its accounts got and keeps what all of them got still
// keeps the canaries all of them were shown, and the score of warden trace
// finds them (Tardos 2003; the symmetric score of Skoric et al. 2008).

// Slot is a canary slot of a list answer.
type Slot struct {
	Bias   float64 // p, the chance an identity is shown it
	Canary uint32  // the index of the canary it carries
}

func arcsineBounds(cutoff float64) (lo, hi float64) {
	lo = math.Asin(math.Sqrt(cutoff))
	return lo, math.Pi/2 - lo
}

// slotKey appends (route, list, record) to b.
func slotKey(b []byte, route, list string, rec []byte) []byte {
	b = append(b, route...)
	b = append(b, 0)
	b = append(b, list...)
	b = append(b, 0)
	return append(b, rec...)
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) * (1.0 / (1 << 53)) }

// IdentityOf is the identity the code is keyed by: the value of the first
// configured facet the request has; "" for none.
func (c *Canaries) IdentityOf(value func(identify.Facet) string) (identify.Facet, string) {
	for _, f := range c.facets {
		if v := value(f); v != "" {
			return f, v
		}
	}
	return 0, ""
}

// Seeds reports whether list answers on route pattern get canaries.
func (c *Canaries) Seeds(route string) bool { return c.seed[route] }

// IsSearch reports whether route pattern is the search route, whose list
// is SearchList's.
func (c *Canaries) IsSearch(route string) bool { return route == c.cfg.Routes.Search }

// Keys is the number of keys (the first signs).
func (c *Canaries) Keys() int { return len(c.keys) }

// Plan decides the canaries of one list answer under key ki, as replayed
// from a ledger entry of n records: for each record (id(i) its id, in
// answer order) that anchors a slot, fn gets the record's index, the slot
// and whether ident, in bucket, is shown its canary. The ledger keeps the
// records served, not the page size asked, so the page is taken as asked
// at Page.Max (what a harvester asks: the fewest requests): its room is
// Page.Max - n, and the plan ends at the min(room, MaxPerPage)-th shown
// (PlanRoom; the package doc's "Pages" says what a page asked smaller
// does to a trace).
func (c *Canaries) Plan(ki int, route, list, ident string, bucket int64, n int, id func(i int) []byte, fn func(i int, s Slot, shown bool)) {
	c.PlanRoom(ki, route, list, ident, bucket, n, c.cfg.Page.Max-n, id, fn)
}

// PlanRoom is Plan for a page with room for room canaries (Room): the
// plan ends at the min(room, MaxPerPage)-th shown, and a page without
// room has no slots. The gateway seeds with it (key 0), so that no page
// it changes is longer than the size the caller asked.
func (c *Canaries) PlanRoom(ki int, route, list, ident string, bucket int64, n, room int, id func(i int) []byte, fn func(i int, s Slot, shown bool)) {
	room = min(room, c.cfg.MaxPerPage)
	if ident == "" || room <= 0 {
		return
	}
	k := c.keys[ki]
	// A search answer's slots carry canaries that match its query
	// (search.go); list is then the sealed query.
	search, q := route == c.cfg.Routes.Search, ""
	var cands []uint32
	if search {
		var ok bool
		if q, ok = c.openQuery(list); !ok {
			return
		}
	}
	var buf [256]byte
	shown := 0
	for i := range n {
		rec := id(i)
		if len(rec) == 0 {
			continue
		}
		b := slotKey(buf[:0], route, list, rec)
		if k.anchor.sum(b) >= c.anchorBelow {
			continue
		}
		s := Slot{Canary: uint32(k.slot.sum(b) % indexCount)}
		if search {
			if cands == nil {
				if cands = c.matching(make([]uint32, 0, 64), ki, q); len(cands) == 0 {
					return // no canary would match: none is shown
				}
			}
			s.Canary = cands[k.slot.sum(b)%uint64(len(cands))]
		}
		th := c.lo + (c.hi-c.lo)*unit(k.bias.sum(b))
		s.Bias = math.Sin(th) * math.Sin(th)
		b = append(b, 0)
		b = append(b, ident...)
		b = binary.BigEndian.AppendUint64(b, uint64(bucket))
		in := unit(k.include.sum(b)) < s.Bias
		fn(i, s, in)
		if in {
			if shown++; shown == room {
				return // the slots after the cap are none: a trace scores what was decided
			}
		}
	}
}

// Canary is canary j of key ki.
func (c *Canaries) Canary(ki int, j uint32) Profile { return c.profile(ki, j) }
