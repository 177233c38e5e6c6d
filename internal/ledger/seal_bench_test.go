package ledger

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// procCPU is the CPU time of the whole process (every thread, the
// collector's included).
func procCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// denseHour is one hour at issue 21's density (100,000,000 Accesses over
// 30 days: about 139,000 an hour; 1,000,000 identities with their ip and
// /24; 1,000,000 subjects; 100,000 authors, Zipf 1.1; half profile
// look-ups, half feed pages of two posts; request ids as one gateway
// process makes them), as a log would hold it, ids of d.
func denseHour(d *dictionary, n int) *partition {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, 99999)
	var fr []byte
	in := func(ns int, s string) uint32 { return d.intern(ns, []byte(s), &fr) }
	p := newPartition("dense", t0.Unix())
	for i := 0; i < n; i++ {
		id := rng.IntN(1000000)
		e := entry{t: t0.UnixMicro() + int64(i)*3600e6/int64(n), reqID: reqIDOf(0x5eed1d5, uint64(i+1)), status: 200}
		e.facets[1] = in(nsFacet+1, fmt.Sprint("acct", id)) + 1
		e.facets[2] = in(nsFacet+2, fmt.Sprint("ip", id)) + 1
		e.facets[3] = in(nsFacet+3, fmt.Sprint("net", id>>8)) + 1
		e.classes = []uint32{in(nsName, "contact"), in(nsName, "profile")}
		if rng.IntN(2) == 0 {
			e.route = in(nsName, "GET /v1/users/{id}") + 1
			r := rec{id: in(nsID, fmt.Sprint("u", rng.IntN(1000000))), classes: 3}
			if rng.IntN(5) == 0 {
				r.masked = 1
			}
			e.recs = []rec{r}
		} else {
			e.route = in(nsName, "GET /v1/feed") + 1
			for k := 0; k < 2; k++ {
				a := fmt.Sprint("a", zipf.Uint64())
				e.authors = append(e.authors, in(nsID, a))
				e.recs = append(e.recs, rec{id: in(nsID, "u"+a), classes: 2})
			}
		}
		p.addEntry(&e)
	}
	for ns := range p.sizes {
		p.sizes[ns] = d.t[ns].len()
	}
	return p
}

// logOfPartition is the log of p, whose ids are d's: d's names as
// dictionary frames, then p's Accesses.
func logOfPartition(d *dictionary, p *partition) []byte {
	log := appendFrame(nil, kindHeader, headerBody(p.hour))
	for ns := range d.t {
		for i := range d.t[ns].len() {
			log = appendDictFrame(log, ns, d.t[ns].at(uint32(i)))
		}
	}
	for i := range p.entries {
		log = appendFrame(log, kindAccess, appendEntry(nil, &p.entries[i], p.hour*1e6))
	}
	return log
}

// BenchmarkSealDense seals one hour at the density as the sealer
// does (read the log, translate to the shared dictionary, index, encode)
// and reports the sealed file's bytes per Access, by section, what
// sealing allocates per Access and its CPU per Access (cpu-ns/access: the
// process's, the collector's work included; on a shared machine ns/op
// counts waiting for a core too).
func BenchmarkSealDense(b *testing.B) {
	const n = 139000
	d := &dictionary{}
	p := denseHour(d, n)
	log := logOfPartition(d, p)
	enc := mustEncoder(b)
	var out []byte
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	c0 := procCPU()
	b.ResetTimer()
	var s sealScratch // as the sealer keeps it
	for i := 0; i < b.N; i++ {
		q, valid, _ := readLogInto("dense", log, &s.arena, s.entries)
		if valid != len(log) {
			b.Fatal("log does not read back")
		}
		var frames []byte
		tuples := d.adopt(q, &frames)
		out, _ = encodeSeg(q, tuples, [32]byte{}, enc)
		s.release(q, n)
	}
	b.StopTimer()
	cpu := procCPU() - c0
	runtime.ReadMemStats(&m1)
	var fr []byte
	tuples := tuplesOf(p.entries, func(key []byte) uint32 { return d.intern(nsTuple, key, &fr) })
	x := buildIndex4(p.entries, tuples, p.hour)
	per := func(v int) float64 { return float64(v) / n }
	b.ReportMetric(per(len(out)), "sealed-B/access")
	b.ReportMetric(per(len(x.takers.appendTo(nil, enc))), "whotook-B/access")
	b.ReportMetric(per(len(x.viewers.appendTo(nil, enc))), "reach-B/access")
	b.ReportMetric(per(len(appendColumns(nil, p.entries, tuples, p.hour, enc))), "accesses-B/access")
	b.ReportMetric(float64(cpu)/float64(b.N)/n, "cpu-ns/access")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N)/n, "alloc-B/access")
}
