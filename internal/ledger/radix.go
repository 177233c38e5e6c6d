package ledger

import (
	"cmp"
	"math/bits"
	"slices"
)

// The sealer sorts an hour's postings (author -> tuple pairs) and
// who-took takings (subject, tuple, classes, time): at the issue's
// density about 139,000 pairs and 208,000 takings an hour, keys of about 20
// bits each. A comparison sort spends about 18 comparisons per element on
// them (pdqsort; a quarter of the sealer's CPU in BenchmarkSealDense); an
// LSD radix sort reads and writes each element once per 11-bit digit, and
// skips the digits where every key agrees (the high bits of integers of a
// dictionary of a few million). The order is the same total order, so the
// sealed bytes are the same.

const (
	radixBits    = 11
	radixBuckets = 1 << radixBits
	radixDigits  = (64 + radixBits - 1) / radixBits
	// radixMin: below it a comparison sort is as fast, and needs no
	// histogram.
	radixMin = 1024
)

// radixSort sorts a ascending, with tmp (grown when shorter than a) as
// scratch; the sorted keys are in the returned slice, a or tmp's memory.
// The other slice is returned as the scratch for a next sort.
func radixSort(a, tmp []uint64) (sorted, scratch []uint64) {
	if len(a) < radixMin {
		slices.Sort(a)
		return a, tmp
	}
	if cap(tmp) < len(a) {
		tmp = make([]uint64, len(a))
	}
	tmp = tmp[:len(a)]
	var counts [radixDigits][radixBuckets]uint32
	for _, k := range a {
		for d := range radixDigits {
			counts[d][k>>(d*radixBits)&(radixBuckets-1)]++
		}
	}
	n := uint32(len(a))
	for d := range radixDigits {
		c := &counts[d]
		shift := d * radixBits
		if c[a[0]>>shift&(radixBuckets-1)] == n {
			continue // every key has this digit
		}
		var sum uint32
		for i := range c {
			c[i], sum = sum, sum+c[i]
		}
		for _, k := range a {
			b := k >> shift & (radixBuckets - 1)
			tmp[c[b]] = k
			c[b]++
		}
		a, tmp = tmp, a
	}
	return a, tmp
}

// sortTakings sorts ts by subject, tuple, classes served and time (the
// order buildRows writes rows in), into out (grown when short), using
// keys as scratch; it returns the sorted takings and the buffers for a
// next hour. Subject, tuple and the taking's place are packed in one
// integer and radix sorted; the rare takings of one subject and tuple
// (an identity served the same record twice in the hour) are then put
// in order by classes and time. When the three do not fit 64 bits it
// sorts by comparison.
func sortTakings(ts, out []taking, keys, tmp []uint64) (sorted, outBuf []taking, keyBuf, tmpBuf []uint64) {
	var ms, mi uint32
	for i := range ts {
		ms, mi = max(ms, ts[i].subject), max(mi, ts[i].ident)
	}
	ib, nb := bits.Len32(mi), bits.Len(uint(len(ts)))
	if len(ts) < radixMin || bits.Len32(ms)+ib+nb > 64 {
		slices.SortFunc(ts, compareTakings)
		return ts, out, keys, tmp
	}
	keys = slices.Grow(keys[:0], len(ts))[:len(ts)]
	for i := range ts {
		keys[i] = uint64(ts[i].subject)<<(ib+nb) | uint64(ts[i].ident)<<nb | uint64(i)
	}
	keys, tmp = radixSort(keys, tmp)
	out = slices.Grow(out[:0], len(ts))[:len(ts)]
	for i, k := range keys {
		out[i] = ts[k&(1<<nb-1)]
	}
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].subject == out[i].subject && out[j].ident == out[i].ident {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(out[i:j], compareTakings)
		}
		i = j
	}
	return out, ts, keys, tmp
}

func compareTakings(a, b taking) int {
	if c := cmp.Compare(a.subject, b.subject); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ident, b.ident); c != 0 {
		return c
	}
	if c := cmp.Compare(a.set, b.set); c != 0 {
		return c
	}
	return cmp.Compare(a.t, b.t)
}
