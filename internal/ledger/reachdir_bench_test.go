package ledger

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
)

// These run `warden bench ledger`'s reach over a ledger it kept (-dir):
//
//	WARDEN_REACH_DIR=/tmp/l WARDEN_REACH_DAYS=3 go test ./internal/ledger/ -run XXX -bench 'BenchmarkReachDir' -benchtime 40x
//
// (WARDEN_REACH_DAYS: the run's -days; WARDEN_REACH_SHIFT=12h30m moves the
// window back, so that it cuts days). thread-cpu-ms/op is the querying
// thread's CPU, proc-cpu-ms/op every thread's (reach reads on every core).

// reachDirQuery is the bench's reach query (ledgerbench's queryAuthors
// and window), or skips b.
func reachDirQuery(b *testing.B) (dir string, authors []string, win Window) {
	dir = os.Getenv("WARDEN_REACH_DIR")
	if dir == "" {
		b.Skip("WARDEN_REACH_DIR unset")
	}
	days, _ := strconv.Atoi(os.Getenv("WARDEN_REACH_DAYS"))
	if days == 0 {
		days = 30
	}
	rng := rand.New(rand.NewPCG(21, 2))
	seen := map[int]bool{}
	for len(authors) < 1000 {
		v := rng.IntN(100000)
		if !seen[v] {
			seen[v] = true
			authors = append(authors, "a"+strconv.Itoa(v))
		}
	}
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(days) * 24 * time.Hour)
	// WARDEN_REACH_SHIFT (a duration) moves the window back: its ends
	// cut days, whose hours are read one by one.
	shift, _ := time.ParseDuration(os.Getenv("WARDEN_REACH_SHIFT"))
	end = end.Add(-shift)
	return dir, authors, Window{From: end.Add(-7 * 24 * time.Hour), To: end}
}

// cpuMetrics runs f b.N times on a locked thread and reports the thread's
// and the process's CPU per op.
func cpuMetrics(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var rs0, rs1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &rs0)
	c := threadCPU()
	b.ResetTimer()
	for b.Loop() {
		f()
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &rs1)
	b.ReportMetric(float64(threadCPU()-c)/float64(b.N)/1e6, "thread-cpu-ms/op")
	proc := (rs1.Utime.Nano() + rs1.Stime.Nano()) - (rs0.Utime.Nano() + rs0.Stime.Nano())
	b.ReportMetric(float64(proc)/float64(b.N)/1e6, "proc-cpu-ms/op")
}

// BenchmarkReachDir is the bench's warm reach: one reader, Viewers and
// the union of the bitmaps (Union; WARDEN_REACH_FASTOR=1: roaring.FastOr).
func BenchmarkReachDir(b *testing.B) {
	dir, authors, win := reachDirQuery(b)
	r, err := OpenReader(dir, win)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	fastOr := os.Getenv("WARDEN_REACH_FASTOR") == "1"
	once := func() int {
		views, _ := must2(r.Viewers(authors, identify.FacetAccount))(b)
		if fastOr {
			return int(roaring.FastOr(views...).GetCardinality())
		}
		return int(Union(views).GetCardinality())
	}
	b.Logf("reach %d, %d partitions, %d rollups", once(), r.Partitions(), len(r.rollups))
	cpuMetrics(b, func() { once() })
}

// BenchmarkReachDirCold is reach.Run's path: a reader opened per query
// (the dictionary read), the histogram of k.
func BenchmarkReachDirCold(b *testing.B) {
	dir, authors, win := reachDirQuery(b)
	q := ReachQuery{Authors: authors, By: identify.FacetAccount, Window: win}
	cpuMetrics(b, func() {
		if _, err := Dir(dir).Reach(b.Context(), q); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkParseSegDir is what opening a partition costs a reader, the
// dictionary aside: parseSeg (header, directories and, in format 5, their
// CRC32C) of every sealed hour of WARDEN_REACH_DIR, read into memory,
// as written (format 5) and as format 4 (the same bytes without the
// CRC32C): the check's cost, alternated within one run.
func BenchmarkParseSegDir(b *testing.B) {
	dir, _, _ := reachDirQuery(b)
	ls, err := list(dir)
	if err != nil {
		b.Fatal(err)
	}
	var v5, v4 [][]byte
	covered := 0
	for _, stem := range ls.stems {
		if !ls.seg[stem] {
			continue
		}
		s, err := os.ReadFile(segPath(dir, stem))
		if err != nil {
			b.Fatal(err)
		}
		if string(s[:len(segMagic5)]) != segMagic5 {
			b.Skipf("%s: not format 5", stem)
		}
		p, err := parseSeg(stem, s)
		if err != nil {
			b.Fatal(err)
		}
		cd, _ := parseColumnDir(p.cold)
		covered += len(s) - 36 - len(p.cold) - len(p.v4.viewers.data) - len(p.v4.takers.data) + cd.size
		v5, v4 = append(v5, s), append(v4, segV4(s))
	}
	b.Logf("%d hours, %d bytes under the CRC32C an hour", len(v5), covered/len(v5))
	for _, c := range []struct {
		name string
		segs [][]byte
	}{{"format5", v5}, {"format4", v4}, {"format5again", v5}, {"format4again", v4}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				for _, s := range c.segs {
					if _, err := parseSeg("bench", s); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
