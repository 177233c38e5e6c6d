// Package ledgerbench is `warden bench ledger`: it generates a ledger's
// worth of Accesses, times ingest, size and the queries, and, when
// clickhouse-server is installed, loads the same Accesses into ClickHouse
// (MergeTree, partitioned by day) and times the same queries there in the
// same run. Reach is timed over two windows of 7 days: whole days, and
// one ending 13h30m17s before the data's end, whose ends cut an hour and
// a day (cutWindow), what an operator's `--from 168h` asks. The ledger's row also gives its queries' CPU time (the
// querying thread's, median of the runs): on a shared machine the
// wall-clock times count waiting for a core too. Ingest is given as
// Add's thread's CPU (ingest/cpu-s) and as the writer's whole CPU per
// Access (Row.WriterCPU: Add, sealing, rollups, the collector; the
// process's less the generator's). It must never be part of CI (it installs nothing, and skips
// ClickHouse when absent).
//
// The ClickHouse row (clickhouse.go) checks every step: a failure is the
// row's Skipped with the step, how the server ended when it has gone
// (chserver's Exited) or its error log's last lines, and the path of the
// server's logs, kept when the row failed. Its writer figure is the
// server's peak RSS. Options.NoWarden (`-warden=false`) runs it alone.
// Options.HeapProfile (`-heapprofile FILE`) keeps a heap profile of the
// ledger's writer at its live heap's peak, for what its memory holds.
// At 100,000,000 Accesses the server, run alone with 18.16's settings,
// completed (peak RSS 714 MiB, no OOM kill in the kernel's log): the
// likeliest cause of the run that lost it is a stop from outside (see
// chserver's ownCopy), not its load.
package ledgerbench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/warden-gw/warden/internal/ledger"
)

// Options of a run. Zero values take the defaults.
type Options struct {
	Dir        string // the ledger directory (made fresh by the caller)
	Accesses   int    // 100,000,000
	Identities int    // 1,000,000
	Subjects   int    // 1,000,000
	Authors    int    // 100,000
	Days       int    // 30
	Seed       uint64
	// NoClickHouse skips the comparison row (its load of 100,000,000
	// rows takes longer than the ledger's run).
	NoClickHouse bool
	// NoWarden skips the ledger's row: the ClickHouse comparison alone
	// (to reproduce a failure of its load without the ledger's run).
	NoWarden bool
	// HeapProfile, when set, is a file the ledger's row writes a heap
	// profile to (pprof) each time the writer's live heap, as sampled for
	// its "live heap" column, reaches a new peak: the last one written is
	// what was live at the peak (as the last collection marked it).
	HeapProfile string
}

func (o *Options) defaults() {
	if o.Accesses <= 0 {
		o.Accesses = 100_000_000
	}
	if o.Identities <= 0 {
		o.Identities = 1_000_000
	}
	if o.Subjects <= 0 {
		o.Subjects = 1_000_000
	}
	if o.Authors <= 0 {
		o.Authors = 100_000
	}
	if o.Days <= 0 {
		o.Days = 30
	}
	if o.Seed == 0 {
		o.Seed = 21
	}
}

// Start is the first Access's time.
var Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// gen yields the Accesses of o in time order, the same for the same
// options: half profile look-ups (a subject's contact and profile, contact
// masked one time in five), half feed pages of two posts whose authors are
// drawn with heavy-tailed popularity (Zipf, s = 1.1). Identities and
// subjects are drawn uniformly; each identity has its own ip and /24.
type gen struct {
	o    Options
	rng  *rand.Rand
	zipf *rand.Zipf
	step time.Duration
	i    int
	// prefix is the request ids' per-process prefix.
	prefix uint32
}

func newGen(o Options) *gen {
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	span := time.Duration(o.Days) * 24 * time.Hour
	return &gen{o: o, rng: rng, zipf: rand.NewZipf(rng, 1.1, 1, uint64(o.Authors-1)), step: span / time.Duration(o.Accesses),
		prefix: rng.Uint32()}
}

// access is one generated Access, in the ids both stores get.
type access struct {
	t        time.Time
	reqID    string
	account  string
	ip, net  string
	subjects []string
	classes  uint64 // of subjects[0]; feed records carry "profile" only
	masked   uint64
	authors  []string
	feed     bool
}

var hexDigits = "0123456789abcdef"

func (g *gen) next(a *access) bool {
	if g.i >= g.o.Accesses {
		return false
	}
	a.t = Start.Add(time.Duration(g.i) * g.step)
	g.i++
	// Request ids as the gateway makes them (gateway/pipeline.go): one
	// process's random prefix of 8 hex digits and its counter of 16.
	var rb [24]byte
	x := uint64(g.prefix) << 32
	for k := 0; k < 8; k++ {
		rb[k] = hexDigits[x>>(60-4*k)&15]
	}
	for k, n := 0, uint64(g.i); k < 16; k++ {
		rb[8+k] = hexDigits[n>>(60-4*k)&15]
	}
	a.reqID = string(rb[:])
	id := g.rng.IntN(g.o.Identities)
	a.account = "acct" + itoa(id)
	a.ip = fmt.Sprintf("10.%d.%d.%d", id>>16&255, id>>8&255, id&255)
	a.net = fmt.Sprintf("10.%d.%d.0/24", id>>16&255, id>>8&255)
	a.subjects, a.authors = a.subjects[:0], a.authors[:0]
	a.feed = g.rng.IntN(2) == 1
	if !a.feed {
		a.subjects = append(a.subjects, "u"+itoa(g.rng.IntN(g.o.Subjects)))
		a.classes, a.masked = 0b11, 0
		if g.rng.IntN(5) == 0 {
			a.masked = 0b01
		}
		return true
	}
	a.classes, a.masked = 0b10, 0
	for k := 0; k < 2; k++ {
		au := "a" + itoa(int(g.zipf.Uint64()))
		a.authors = append(a.authors, au)
		a.subjects = append(a.subjects, "u"+au) // the author's profile, shown with the post
	}
	return true
}

func itoa(n int) string { return fmt.Sprint(n) }

// entry is a as the ledger takes it.
func (a *access) entry(e *ledger.Entry) {
	*e = ledger.Entry{Time: a.t, RequestID: a.reqID, Status: 200, Authors: a.authors}
	e.Identity[1], e.Identity[2], e.Identity[3] = a.account, a.ip, a.net
	if a.feed {
		e.Route, e.Classes = "GET /v1/feed", feedClasses
	} else {
		e.Route, e.Classes = "GET /v1/users/{id}", profileClasses
	}
	e.Records = e.Records[:0]
	for _, s := range a.subjects {
		e.Records = append(e.Records, ledger.Record{ID: s, Classes: a.classes, Masked: a.masked})
	}
}

var (
	profileClasses = []string{"contact", "profile"}
	feedClasses    = []string{"contact", "profile"}
)

// queryAuthors is the reach query's authors: n drawn uniformly from all
// authors (a set of accounts under study is rarely the most followed).
func queryAuthors(o Options, n int) []string {
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	seen := map[int]bool{}
	var out []string
	for len(out) < n && len(out) < o.Authors {
		v := rng.IntN(o.Authors)
		if !seen[v] {
			seen[v] = true
			out = append(out, "a"+itoa(v))
		}
	}
	return out
}

// querySubject is who-took's subject: a subject that was looked up (one
// of the o.Subjects, however few).
func querySubject(o Options) string {
	return "u" + itoa(int(math.Max(0, float64((o.Subjects/2+17)%max(o.Subjects, 1)))))
}
