package ledgerbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/reach"
)

// Row is one store's figures.
type Row struct {
	Store     string
	Ingest    time.Duration // appending every Access (the ledger: Add calls only)
	IngestCPU time.Duration // the ledger: CPU time of Add's thread (one core), GC assists included
	IngestAll time.Duration // until everything is sealed / merged and queryable
	// WriterCPU is the ledger's CPU time for everything its writer does,
	// from Open to Close: Add, flushing, sealing, the day rollups and the
	// collector (the process's CPU time less the generator's thread's;
	// the collector's share includes collecting the generator's garbage,
	// as a gateway's collections include the request path's).
	WriterCPU time.Duration
	Bytes     int64
	// Reach is exact reach of the authors over the last ReachDays days,
	// whole days (window); Cut the same over a window of as many days
	// whose ends cut an hour (cutWindow), what `warden reach --from 168h`
	// asks.
	Reach, Cut  Reach
	WhoTook     time.Duration // who-took of one subject over every day, median
	WhoTookCold time.Duration
	WhoTookRows int
	// who-took's CPU time, as Reach's.
	WhoTookCPU, WhoTookColdCPU time.Duration
	RollupBytes                int64 // the ledger's day rollups (*.day), part of Bytes
	AuthoredBytes              int64 // the ledger's hours' author indexes (*.aut), part of Bytes
	WriterMaxRSS               int64 // bytes; the ledger's heap in use at its peak (live objects and garbage not yet collected)
	WriterLive                 int64 // bytes; the ledger's live heap at its peak (as the last collection marked it)
	Skipped                    string
	Note                       string // a line under the row
}

// Reach is one reach window's figures.
type Reach struct {
	Wall time.Duration // warm (the ledger: one reader asked again), median
	Cold time.Duration // opening the store per query (ledger: reach.Run), median
	// The ledger's CPU time (the querying thread's, GC assists included,
	// the collector's own workers not), median: on a shared machine the
	// wall-clock times above also count waiting for a core.
	CPU, ColdCPU time.Duration
	// The same, all the process's threads (reach reads its sections on
	// every core, GOMAXPROCS): the CPU a query costs, where the querying
	// thread's is its share.
	ProcCPU, ColdProcCPU time.Duration
	Value                int // people reached
	Impressions          uint64
}

// Report is a run's result.
type Report struct {
	Options   Options
	ReachDays int
	Authors   int
	Subject   string
	Rows      []Row
}

// clock is the writer's time, driven by the generator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

const reachDays, nAuthors, runs = 7, 1000, 5

// Run generates the Accesses into o.Dir's ledger and times it; then into
// ClickHouse when clickhouse-server is found (skipped with a reason when
// not). log gets progress.
func Run(ctx context.Context, o Options, log io.Writer) (*Report, error) {
	o.defaults()
	rep := &Report{Options: o, ReachDays: reachDays, Authors: min(nAuthors, o.Authors), Subject: querySubject(o)}
	if o.NoWarden {
		rep.Rows = append(rep.Rows, Row{Store: "warden ledger", Skipped: "not asked (-warden=false)"})
	} else {
		row, err := runLedger(ctx, o, log)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, *row)
	}
	if o.NoClickHouse {
		rep.Rows = append(rep.Rows, Row{Store: "clickhouse", Skipped: "not asked (-clickhouse=false)"})
	} else {
		rep.Rows = append(rep.Rows, runClickHouse(ctx, o, log))
	}
	return rep, nil
}

// window is the reach query's whole days: the last reachDays of the data.
func window(o Options) ledger.Window {
	end := Start.Add(time.Duration(o.Days) * 24 * time.Hour)
	return ledger.Window{From: end.Add(-reachDays * 24 * time.Hour), To: end}
}

// cutBack is how far before the data's end cutWindow ends: neither on
// the hour nor at midnight, as a window an operator types
// (`--from 168h`) is.
const cutBack = 13*time.Hour + 30*time.Minute + 17*time.Second

// cutWindow is reachDays ending cutBack before the data's end: its ends
// cut an hour, and the days around it.
func cutWindow(o Options) ledger.Window {
	w := window(o)
	return ledger.Window{From: w.From.Add(-cutBack), To: w.To.Add(-cutBack)}
}

// procCPU is the CPU time of the whole process, every thread.
func procCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU is the CPU time of the calling thread (Linux, RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeHeapProfile writes the heap profile (live objects as of the last
// collection) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return nil
}

func runLedger(ctx context.Context, o Options, log io.Writer) (*Row, error) {
	// Add's CPU time is read per thread: this goroutine keeps its own.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := &clock{t: Start}
	p0 := procCPU()
	l, err := ledger.Open(ledger.Options{Dir: o.Dir, Now: c.now, FsyncInterval: time.Second})
	if err != nil {
		return nil, err
	}
	g := newGen(o)
	batch := make([]ledger.Entry, 1<<14)
	acc := make([]access, len(batch))
	var ingest, cpu, genCPU time.Duration
	var peak, live uint64
	var ms runtime.MemStats
	lm := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	start := time.Now()
	for n := 0; ; {
		k := 0
		tg := threadCPU()
		for k < len(batch) && g.next(&acc[k]) {
			acc[k].entry(&batch[k])
			k++
		}
		genCPU += threadCPU() - tg
		if k == 0 {
			break
		}
		c.set(batch[k-1].Time)
		t, tc := time.Now(), threadCPU()
		for i := range batch[:k] {
			l.Add(&batch[i])
		}
		ingest += time.Since(t)
		cpu += threadCPU() - tc
		n += k
		if n%(1<<18) < k {
			tg := threadCPU()
			runtime.ReadMemStats(&ms)
			metrics.Read(lm)
			peak = max(peak, ms.HeapInuse)
			if v := lm[0].Value.Uint64(); v > live {
				live = v
				if o.HeapProfile != "" {
					if err := writeHeapProfile(o.HeapProfile); err != nil {
						l.Close()
						return nil, err
					}
				}
			}
			genCPU += threadCPU() - tg // the bench's, not the writer's
		}
		if n%(1<<20) < k {
			fmt.Fprintf(log, "ledger: %d Accesses appended (%.0f/s in Add, %.0f/s of Add's CPU), heap %d MiB, live %d MiB\n",
				n, float64(n)/ingest.Seconds(), float64(n)/cpu.Seconds(), ms.HeapInuse>>20, lm[0].Value.Uint64()>>20)
		}
		if ctx.Err() != nil {
			l.Close()
			return nil, ctx.Err()
		}
	}
	// Pass the last hour so that it is sealed too, then wait for the sealer.
	c.set(Start.Add(time.Duration(o.Days)*24*time.Hour + time.Hour))
	time.Sleep(300 * time.Millisecond)
	if err := l.Close(); err != nil {
		return nil, err
	}
	row := &Row{Store: "warden ledger", Ingest: ingest, IngestCPU: cpu, IngestAll: time.Since(start), WriterMaxRSS: int64(peak), WriterLive: int64(live),
		WriterCPU: procCPU() - p0 - genCPU}
	des, _ := os.ReadDir(o.Dir)
	for _, de := range des {
		if info, err := de.Info(); err == nil && !de.IsDir() {
			row.Bytes += info.Size()
			if strings.HasSuffix(de.Name(), ".day") {
				row.RollupBytes += info.Size()
			}
			if strings.HasSuffix(de.Name(), ".aut") {
				row.AuthoredBytes += info.Size()
			}
		}
	}
	authors := queryAuthors(o, nAuthors)
	// A derived file passed over (a day rollup or author index the reader
	// cannot use) would time the hours instead: said, not silently timed.
	warn := ledger.WithWarnings(func(err error) { fmt.Fprintf(log, "warning: the timed queries read around %v\n", err) })
	if row.Reach, err = timeReach(o.Dir, authors, window(o), warn); err != nil {
		return nil, err
	}
	if row.Cut, err = timeReach(o.Dir, authors, cutWindow(o), warn); err != nil {
		return nil, err
	}
	all, err := ledger.OpenReader(o.Dir, ledger.Window{}, warn)
	if err != nil {
		return nil, err
	}
	if _, err := all.WhoTook(rep0(o), "", identify.FacetAccount); err != nil {
		all.Close()
		return nil, err
	}
	var qerr error // the first error of a timed query
	keep := func(err error) {
		if qerr == nil {
			qerr = err
		}
	}
	row.WhoTook, row.WhoTookCPU, _ = medianCPU(func() {
		res, err := all.WhoTook(querySubject(o), "", identify.FacetAccount)
		keep(err)
		if err == nil {
			row.WhoTookRows = len(res.Rows)
		}
	})
	all.Close()
	row.WhoTookCold, row.WhoTookColdCPU, _ = medianCPU(func() {
		r, err := ledger.OpenReader(o.Dir, ledger.Window{}, warn)
		if err != nil {
			keep(err)
			return
		}
		_, err = r.WhoTook(querySubject(o), "", identify.FacetAccount)
		keep(err)
		r.Close()
	})
	if qerr != nil {
		return nil, qerr
	}
	return row, nil
}

// timeReach times exact reach of authors over win in dir's ledger: warm
// (one reader asked again: Viewers and Union) and cold (reach.Run, a
// reader opened per query); warn is said each derived file passed over.
func timeReach(dir string, authors []string, win ledger.Window, warn ledger.ReaderOption) (Reach, error) {
	var rc Reach
	r, err := ledger.OpenReader(dir, win, warn)
	if err != nil {
		return rc, err
	}
	defer r.Close()
	var qerr error
	once := func() {
		views, impr, err := r.Viewers(authors, identify.FacetAccount)
		if err != nil {
			qerr = err
			return
		}
		rc.Value, rc.Impressions = int(ledger.Union(views).GetCardinality()), 0
		for _, v := range impr {
			rc.Impressions += v
		}
	}
	once() // the dictionary's look-up, built once per reader
	rc.Wall, rc.CPU, rc.ProcCPU = medianCPU(once)
	if qerr != nil {
		return rc, qerr
	}
	rc.Cold, rc.ColdCPU, rc.ColdProcCPU = medianCPU(func() {
		if _, err := reach.RunOn(context.Background(), ledger.Dir(dir, warn), reach.Query{Authors: authors, Window: win}); err != nil {
			qerr = err
		}
	})
	return rc, qerr
}

// rep0 is a subject other than the one timed, to warm the reader.
func rep0(o Options) string { return "u1" }

// medianCPU is median, and the median CPU time of the calling thread
// (locked to it by runLedger) and of the whole process over the same
// runs.
func medianCPU(f func()) (wall, cpu, proc time.Duration) {
	c, p := make([]time.Duration, runs), make([]time.Duration, runs)
	i := 0
	wall = median(func() {
		t, tp := threadCPU(), processCPU()
		f()
		c[i], p[i] = threadCPU()-t, processCPU()-tp
		i++
	})
	slices.Sort(c)
	slices.Sort(p)
	return wall, c[runs/2], p[runs/2]
}

// processCPU is the CPU time of the process, every thread.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(f func()) time.Duration {
	d := make([]time.Duration, runs)
	for i := range d {
		t := time.Now()
		f()
		d[i] = time.Since(t)
	}
	slices.Sort(d)
	return d[runs/2]
}

// Format writes the report as text, with the command that made it.
func (rep *Report) Format(w io.Writer, command string) {
	o := rep.Options
	cut := cutWindow(o)
	fmt.Fprintf(w, "$ %s\n", command)
	fmt.Fprintf(w, "%d Accesses, %d identities, %d subjects, %d authors (Zipf 1.1), %d days; reach: %d authors drawn uniformly, by account, over the last %d days (whole days) and over %d days cut at both ends (cut: %s to %s); who-took: %s over every day\n",
		o.Accesses, o.Identities, o.Subjects, o.Authors, o.Days, rep.Authors, rep.ReachDays, rep.ReachDays, cut.From.Format(time.RFC3339), cut.To.Format(time.RFC3339), rep.Subject)
	fmt.Fprintf(w, "%-15s %12s %12s %14s %12s %10s %10s %10s %10s %10s %10s %10s %10s %12s %11s %s\n", "store", "ingest/s", "ingest/cpu-s", "ingest+seal s", "bytes/acc", "reach ms", "cold ms", "cut ms", "cut cold", "who-took", "cold ms", "reach", "cut reach", "writer heap", "live heap", "")
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "%-15s skipped: %s\n", r.Store, r.Skipped)
			continue
		}
		perCPU := "-"
		if r.IngestCPU > 0 {
			perCPU = fmt.Sprintf("%.0f", float64(o.Accesses)/r.IngestCPU.Seconds())
		}
		// What a row does not measure (ClickHouse's cold queries and live
		// heap) is "-", not a 0 that reads as a measurement: a cold query
		// never takes under a microsecond, a writer never holds no byte.
		cold := func(d time.Duration) string {
			if d == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", ms(d))
		}
		live := "-"
		if r.WriterLive > 0 {
			live = fmt.Sprintf("%d MiB", r.WriterLive>>20)
		}
		fmt.Fprintf(w, "%-15s %12.0f %12s %14.1f %12.2f %10.2f %10s %10.2f %10s %10.2f %10s %10d %10d %8d MiB %11s  who-took rows %d, impressions %d, cut %d\n",
			r.Store, float64(o.Accesses)/r.Ingest.Seconds(), perCPU, r.IngestAll.Seconds(), float64(r.Bytes)/float64(o.Accesses),
			ms(r.Reach.Wall), cold(r.Reach.Cold), ms(r.Cut.Wall), cold(r.Cut.Cold), ms(r.WhoTook), cold(r.WhoTookCold), r.Reach.Value, r.Cut.Value,
			r.WriterMaxRSS>>20, live, r.WhoTookRows, r.Reach.Impressions, r.Cut.Impressions)
		if r.WriterCPU > 0 {
			fmt.Fprintf(w, "%-15s writer's CPU (Add, sealing, rollups, collector; the process's less the generator's): %.0f Accesses per CPU-second, %.2f us an Access (Add's thread %.2f)\n",
				"", float64(o.Accesses)/r.WriterCPU.Seconds(), float64(r.WriterCPU.Nanoseconds())/float64(o.Accesses)/1e3, float64(r.IngestCPU.Nanoseconds())/float64(o.Accesses)/1e3)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "%-15s %s\n", "", r.Note)
		}
		if r.Reach.CPU > 0 {
			fmt.Fprintf(w, "%-15s queries' CPU ms (the querying thread's, median): reach %.2f, cold %.2f; cut %.2f, cold %.2f; who-took %.2f, cold %.2f\n",
				"", ms(r.Reach.CPU), ms(r.Reach.ColdCPU), ms(r.Cut.CPU), ms(r.Cut.ColdCPU), ms(r.WhoTookCPU), ms(r.WhoTookColdCPU))
			fmt.Fprintf(w, "%-15s reach's CPU ms, every thread of the process (median): %.2f, cold %.2f; cut %.2f, cold %.2f; day rollups %.2f and author indexes %.2f bytes/acc of the %.2f\n",
				"", ms(r.Reach.ProcCPU), ms(r.Reach.ColdProcCPU), ms(r.Cut.ProcCPU), ms(r.Cut.ColdProcCPU),
				float64(r.RollupBytes)/float64(o.Accesses), float64(r.AuthoredBytes)/float64(o.Accesses), float64(r.Bytes)/float64(o.Accesses))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// DirSize is the bytes of files under dir.
func DirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}
