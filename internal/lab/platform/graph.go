package platform

import (
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"
)

// csr is one direction of the follow graph in compressed sparse rows:
// the list of id is adj[off[id]:off[id+1]], ids 1..N (off[0] = off[1] = 0).
// Two int32 arrays are all the graph costs: 4 bytes per edge per direction.
type csr struct {
	off []int32
	adj []int32
}

func (c *csr) list(id int) []int32 { return c.adj[c.off[id]:c.off[id+1]] }

// rng is SplitMix64: a tiny, portable stream of 64-bit values.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// below returns a value in [0, n).
func (r *rng) below(n uint64) uint64 {
	hi, _ := bits.Mul64(r.next(), n)
	return hi
}

// alias is Vose's alias table over ids 1..N, built with exact integer
// weights, so sampling proportionally to popularity is O(1) and the same on
// any machine. Each slot is 8 bytes (threshold and alias side by side), so
// a draw costs one cache miss.
type alias struct {
	slots []aliasSlot
}

type aliasSlot struct {
	thr   uint32 // keep the slot's own index when a 32-bit draw is below thr
	alias int32
}

func newAlias(w []uint64) *alias {
	n := uint64(len(w))
	var total uint64
	scaled := make([]uint64, n)
	for i, x := range w {
		total += x
		scaled[i] = x * n
	}
	prob := make([]uint64, n) // in [0, total]
	a := &alias{slots: make([]aliasSlot, n)}
	var small, large []int32
	for i := range scaled {
		if scaled[i] < total {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		prob[s], a.slots[s].alias = scaled[s], l
		scaled[l] -= total - scaled[s]
		if scaled[l] < total {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(large, small...) {
		prob[i], a.slots[i].alias = total, i
	}
	for i, p := range prob {
		// thr = p * 2^32 / total, rounded down; exact integer arithmetic.
		hi, lo := bits.Mul64(p, 1<<32)
		q, _ := bits.Div64(hi, lo, total)
		if q > math.MaxUint32 {
			q = math.MaxUint32
		}
		a.slots[i].thr = uint32(q)
	}
	return a
}

// sample returns an index in [0, n).
func (a *alias) sample(r *rng) int {
	x := r.next()
	hi, _ := bits.Mul64(x, uint64(len(a.slots)))
	s := a.slots[hi]
	if uint32(x) < s.thr {
		return int(hi)
	}
	return int(s.alias)
}

// buildGraph draws the follow graph: profile u follows outDegree(u)
// profiles drawn by popularity (a Pareto weight), without itself or
// repeats. Each profile's draws come from its own stream, so the result
// does not depend on how the work is split over cores.
func buildGraph(g *gen, n int) (following, followers csr) {
	w := make([]uint64, n)
	parallel(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			w[i] = g.popularity(i + 1)
		}
	})
	pop := newAlias(w)
	w = nil

	off := make([]int32, n+2)
	for id := 1; id <= n; id++ {
		off[id+1] = off[id] + int32(min(g.outDegree(id), n-1))
	}
	adj := make([]int32, off[n+1])
	count := make([]int32, n+2)
	parallel(n, func(lo, hi int) {
		for id := lo + 1; id <= hi; id++ {
			l := adj[off[id]:off[id+1]]
			r := rng{s: g.h(id, tagEdges)}
			for i := range l {
				v := pop.sample(&r) + 1
				for tries := 0; v == id && tries < 8; tries++ {
					v = pop.sample(&r) + 1
				}
				if v == id { // only when one profile holds all the weight
					v = id%n + 1
				}
				l[i] = int32(v)
			}
			slices.Sort(l)
			count[id] = int32(len(slices.Compact(l)))
		}
	})
	// Close the gaps left by repeats.
	following.off = make([]int32, n+2)
	for id := 1; id <= n; id++ {
		following.off[id+1] = following.off[id] + count[id]
	}
	following.adj = make([]int32, following.off[n+1])
	for id := 1; id <= n; id++ {
		copy(following.adj[following.off[id]:following.off[id+1]], adj[off[id]:off[id]+count[id]])
	}
	adj, off = nil, nil

	// Reverse: followers of v in ascending id order.
	in := make([]int32, n+2)
	for _, v := range following.adj {
		in[v+1]++
	}
	for id := 1; id <= n; id++ {
		in[id+1] += in[id]
	}
	followers.off = in
	followers.adj = make([]int32, len(following.adj))
	pos := slices.Clone(in)
	for u := 1; u <= n; u++ {
		for _, v := range following.list(u) {
			followers.adj[pos[v]] = int32(u)
			pos[v]++
		}
	}
	return following, followers
}

// parallel runs f over [0, n) split into one contiguous range per core.
func parallel(n int, f func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), max(1, n/4096))
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := n*p/parts, n*(p+1)/parts
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}
