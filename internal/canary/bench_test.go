package canary

import (
	"strconv"
	"testing"
)

// BenchmarkSeedPage: the seeder's work on one followers page of 50 records, room for 2: the
// plan (a SipHash per record) and the canaries shown rendered.
func BenchmarkSeedPage(b *testing.B) {
	c := newTest(b)
	ids := make([][]byte, 50)
	for i := range ids {
		ids[i] = []byte(strconv.Itoa(1000 + i*7))
	}
	buf := make([]byte, 0, 256)
	list := 0
	for b.Loop() {
		list++
		c.PlanRoom(0, "GET /v1/users/{id}/followers", strconv.Itoa(list%5000), "4711", 20000, len(ids), 2, func(i int) []byte { return ids[i] },
			func(i int, s Slot, shown bool) {
				if shown {
					p := c.Canary(0, s.Canary)
					buf = c.AppendSummary(buf[:0], &p)
				}
			})
	}
}

// BenchmarkProfile: making one canary again from its index (an HMAC and
// the fields), what a contact-only trace pays per served canary and what
// indexing every index of a key (2^26) would pay per index.
func BenchmarkProfile(b *testing.B) {
	c := newTest(b)
	j := uint32(0)
	for b.Loop() {
		j++
		p := c.Canary(0, j%indexCount)
		_ = NormEmail(p.Email)
	}
}
