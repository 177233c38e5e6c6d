package ledgerbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/ledger"
)

func small(seed uint64) Options {
	o := Options{Accesses: 20000, Identities: 5000, Subjects: 3000, Authors: 1000, Days: 2, Seed: seed}
	o.defaults()
	return o
}

func all(o Options) []access {
	g := newGen(o)
	var out []access
	for {
		var a access
		if !g.next(&a) {
			return out
		}
		out = append(out, a)
	}
}

// The same options give the same Accesses; another seed gives others.
func TestGenDeterministic(t *testing.T) {
	a, b, c := all(small(7)), all(small(7)), all(small(8))
	if len(a) != len(b) {
		t.Fatalf("%d and %d Accesses", len(a), len(b))
	}
	for i := range a {
		if a[i].reqID != b[i].reqID || a[i].account != b[i].account || !slices.Equal(a[i].subjects, b[i].subjects) || !a[i].t.Equal(b[i].t) {
			t.Fatalf("Access %d differs between two runs of one seed", i)
		}
	}
	same := 0
	for i := range a {
		if a[i].account == c[i].account {
			same++
		}
	}
	if same > len(a)/100 {
		t.Fatalf("seeds 7 and 8 share the account of %d of %d Accesses", same, len(a))
	}
}

// Every Access is well formed: as many as asked, in time order over the
// days asked, ids in their ranges, an identity's ip and /24 its own,
// profile look-ups and feed pages as the doc says, request ids distinct.
func TestGenShape(t *testing.T) {
	o := small(3)
	as := all(o)
	if len(as) != o.Accesses {
		t.Fatalf("%d Accesses, want %d", len(as), o.Accesses)
	}
	end := Start.Add(time.Duration(o.Days) * 24 * time.Hour)
	ids := map[string]bool{}
	var feeds, masked, profiles int
	for i, a := range as {
		if a.t.Before(Start) || !a.t.Before(end) || i > 0 && a.t.Before(as[i-1].t) {
			t.Fatalf("Access %d at %v: out of order or outside [%v, %v)", i, a.t, Start, end)
		}
		if len(a.reqID) != 24 || strings.Trim(a.reqID, "0123456789abcdef") != "" || ids[a.reqID] {
			t.Fatalf("Access %d: request id %q (24 hex digits, distinct)", i, a.reqID)
		}
		ids[a.reqID] = true
		n, err := strconv.Atoi(strings.TrimPrefix(a.account, "acct"))
		if err != nil || n < 0 || n >= o.Identities {
			t.Fatalf("Access %d: account %q outside %d identities", i, a.account, o.Identities)
		}
		ip := fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
		if a.ip != ip || a.net != ip[:strings.LastIndexByte(ip, '.')]+".0/24" {
			t.Fatalf("Access %d: account %d has ip %s net %s", i, n, a.ip, a.net)
		}
		if a.feed {
			feeds++
			if len(a.authors) != 2 || len(a.subjects) != 2 || a.classes != 0b10 || a.masked != 0 {
				t.Fatalf("feed Access %d: %+v", i, a)
			}
			for k, au := range a.authors {
				v, err := strconv.Atoi(strings.TrimPrefix(au, "a"))
				if err != nil || v < 0 || v >= o.Authors || a.subjects[k] != "u"+au {
					t.Fatalf("feed Access %d: author %q, subject %q", i, au, a.subjects[k])
				}
			}
			continue
		}
		profiles++
		if len(a.authors) != 0 || len(a.subjects) != 1 || a.classes != 0b11 {
			t.Fatalf("profile Access %d: %+v", i, a)
		}
		if v, err := strconv.Atoi(strings.TrimPrefix(a.subjects[0], "u")); err != nil || v < 0 || v >= o.Subjects {
			t.Fatalf("profile Access %d: subject %q outside %d", i, a.subjects[0], o.Subjects)
		}
		if a.masked != 0 {
			masked++
		}
	}
	// Half and half, contact masked one time in five: within 5 standard
	// deviations of a binomial.
	if d := feeds - len(as)/2; d*d > 25*len(as)/4 {
		t.Errorf("%d feed pages of %d", feeds, len(as))
	}
	if d := float64(masked) - float64(profiles)/5; d*d > 25*float64(profiles)*0.16 {
		t.Errorf("%d masked of %d profile look-ups", masked, profiles)
	}
}

// Authors' popularity is heavy-tailed: the most served author is served
// far more than a uniform draw would serve any, and a few authors take a
// large share.
func TestGenZipf(t *testing.T) {
	o := small(5)
	counts := map[string]int{}
	total := 0
	for _, a := range all(o) {
		for _, au := range a.authors {
			counts[au]++
			total++
		}
	}
	c := make([]int, 0, len(counts))
	for _, n := range counts {
		c = append(c, n)
	}
	slices.Sort(c)
	slices.Reverse(c)
	uniform := total / o.Authors
	if c[0] < 50*uniform {
		t.Errorf("most served author: %d pieces, uniform would be %d", c[0], uniform)
	}
	top := 0
	for _, n := range c[:10] {
		top += n
	}
	if top < total/4 {
		t.Errorf("the 10 most served authors have %d of %d pieces", top, total)
	}
}

// entry hands the ledger what the generator drew.
func TestAccessEntry(t *testing.T) {
	g := newGen(small(9))
	var a access
	var e ledger.Entry
	for i := 0; i < 200 && g.next(&a); i++ {
		a.entry(&e)
		if !e.Time.Equal(a.t) || e.RequestID != a.reqID || e.Status != 200 || e.Identity[1] != a.account ||
			e.Identity[2] != a.ip || e.Identity[3] != a.net || e.Identity[0] != "" || e.Identity[4] != "" {
			t.Fatalf("Access %d: entry %+v from %+v", i, e, a)
		}
		wantRoute := "GET /v1/users/{id}"
		if a.feed {
			wantRoute = "GET /v1/feed"
		}
		if e.Route != wantRoute || !slices.Equal(e.Authors, a.authors) || len(e.Records) != len(a.subjects) {
			t.Fatalf("Access %d: route %q authors %v records %v", i, e.Route, e.Authors, e.Records)
		}
		for k, r := range e.Records {
			if r.ID != a.subjects[k] || r.Classes != a.classes || r.Masked != a.masked {
				t.Fatalf("Access %d: record %d %+v", i, k, r)
			}
		}
	}
}

// The reach query's authors are distinct, real authors, the same for a
// seed; who-took's subject is one the look-ups can draw.
func TestQueryInputs(t *testing.T) {
	o := small(4)
	q := queryAuthors(o, 100)
	if len(q) != 100 || !slices.Equal(q, queryAuthors(o, 100)) {
		t.Fatalf("authors %d, or not the same twice", len(q))
	}
	seen := map[string]bool{}
	for _, a := range q {
		v, err := strconv.Atoi(strings.TrimPrefix(a, "a"))
		if err != nil || v < 0 || v >= o.Authors || seen[a] {
			t.Fatalf("author %q: outside %d or repeated", a, o.Authors)
		}
		seen[a] = true
	}
	if n := len(queryAuthors(Options{Authors: 10, Seed: 1}, 100)); n != 10 {
		t.Fatalf("100 of 10 authors: %d", n)
	}
	for _, o := range []Options{o, {Subjects: 10}, {Subjects: 1}} {
		s, err := strconv.Atoi(strings.TrimPrefix(querySubject(o), "u"))
		if err != nil || s < 0 || s >= o.Subjects {
			t.Fatalf("who-took subject %q outside %d", querySubject(o), o.Subjects)
		}
	}
	// The report names the authors reach was asked of: 10 of 10, not 1,000.
	rep, err := Run(context.Background(), Options{Accesses: 1, Authors: 10, NoWarden: true, NoClickHouse: true}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Format(&out, "warden bench ledger")
	if !strings.Contains(out.String(), "reach: 10 authors drawn") {
		t.Fatalf("report of a run with 10 authors:\n%s", out.String())
	}
}

// The two reach windows are reachDays long; the whole one starts and
// ends at midnight, the cut one at neither midnight nor an hour, so that
// the bench times the hours a window cuts (and ClickHouse's query cuts
// the same second to the microsecond).
func TestReachWindows(t *testing.T) {
	o := Options{Days: 30}
	o.defaults()
	w, c := window(o), cutWindow(o)
	for _, win := range []ledger.Window{w, c} {
		if d := win.To.Sub(win.From); d != reachDays*24*time.Hour {
			t.Fatalf("window %v: %v long", win, d)
		}
	}
	if w.From.Truncate(24*time.Hour) != w.From || w.To.Truncate(24*time.Hour) != w.To {
		t.Fatalf("whole-days window %v does not start and end at midnight", w)
	}
	for _, end := range []time.Time{c.From, c.To} {
		if end.Truncate(time.Hour) == end || end.Truncate(time.Minute) == end {
			t.Fatalf("cut window's end %v is on the hour or the minute", end)
		}
	}
	q := reachSQL("'a1'", ledger.Window{From: c.From.Add(250 * time.Microsecond), To: c.To.Add(999 * time.Microsecond)})
	if !strings.Contains(q, "us < 250") || !strings.Contains(q, "us > 999") {
		t.Fatalf("ClickHouse's reach does not cut the ends' seconds at their microseconds: %s", q)
	}
}

// BenchmarkIngest appends generated Accesses to a ledger at the issue's
// density (100,000,000 over 30 days: about 139,000 an hour; 1,000,000
// identities), the sealer running beside it as in a gateway: ns/op is
// Add's, timed in batches (generation is not timed); cpu-ns/op is the CPU
// time of Add's thread per Access (GC assists included), what one core
// spends whatever else the machine runs; writer-cpu-ns/op is everything
// the writer does per Access, Add, sealing and the collector (the
// process's CPU time to Close, the generator's thread's taken out).
func BenchmarkIngest(b *testing.B) {
	benchIngest(b, func(l *ledger.Ledger, es []ledger.Entry) {
		for i := range es {
			l.Add(&es[i])
		}
	})
}

// BenchmarkIngestBatch is BenchmarkIngest with the Accesses added 32 at
// a time (AddBatch), as a busy gateway's recording hands them over
// (gateway.Recording's drain).
func BenchmarkIngestBatch(b *testing.B) {
	benchIngest(b, func(l *ledger.Ledger, es []ledger.Entry) {
		for i := 0; i < len(es); i += 32 {
			l.AddBatch(es[i:min(len(es), i+32)])
		}
	})
}

func benchIngest(b *testing.B, add func(l *ledger.Ledger, es []ledger.Entry)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu, genCPU time.Duration
	o := Options{Dir: b.TempDir(), Accesses: b.N, Days: max(1, b.N/(139000*24))}
	o.defaults()
	c := &clock{t: Start}
	p0 := procCPU()
	l, err := ledger.Open(ledger.Options{Dir: o.Dir, Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	g := newGen(o)
	batch := make([]ledger.Entry, 1<<14)
	acc := make([]access, len(batch))
	b.ReportAllocs()
	b.ResetTimer()
	for {
		b.StopTimer()
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
		b.StartTimer()
		t := threadCPU()
		add(l, batch[:k])
		cpu += threadCPU() - t
	}
	b.StopTimer()
	l.Close()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(procCPU()-p0-genCPU)/float64(b.N), "writer-cpu-ns/op")
}

// -heapprofile: the ledger's row writes a heap profile (gzipped pprof)
// when its sampled live heap peaks; it samples every 2^18 Accesses, so a
// run of more than that writes one.
func TestHeapProfile(t *testing.T) {
	o := Options{Accesses: 300000, Identities: 5000, Subjects: 3000, Authors: 1000, Days: 1, Seed: 5, NoClickHouse: true}
	o.defaults()
	o.Dir = t.TempDir() + "/ledger"
	o.HeapProfile = t.TempDir() + "/heap.pprof"
	rep, err := Run(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if w := rep.Rows[0]; w.WriterLive <= 0 {
		t.Fatalf("live heap %d", w.WriterLive)
	}
	b, err := os.ReadFile(o.HeapProfile)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("not a gzipped profile: %d bytes % x", len(b), b[:min(len(b), 4)])
	}
}

// A day rollup the timed reach cannot use is said (the hours answer, the
// same figure, but their time is not the rollups'), by the warm reader
// and by the cold queries alike.
func TestTimedReachSaysFallback(t *testing.T) {
	o := small(3)
	o.NoClickHouse = true
	o.Dir = t.TempDir() + "/ledger"
	rep, err := Run(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	days, err := filepath.Glob(filepath.Join(o.Dir, "*.day"))
	if err != nil || len(days) == 0 {
		t.Fatalf("no day rollups in %s (%v)", o.Dir, err)
	}
	for _, p := range days {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x55
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var said []string
	warn := ledger.WithWarnings(func(err error) { said = append(said, err.Error()) })
	rc, err := timeReach(o.Dir, queryAuthors(o, nAuthors), window(o), warn)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Value != rep.Rows[0].Reach.Value || rc.Impressions != rep.Rows[0].Reach.Impressions {
		t.Fatalf("reach %d (%d impressions) around damaged rollups, %d (%d) before", rc.Value, rc.Impressions, rep.Rows[0].Reach.Value, rep.Rows[0].Reach.Impressions)
	}
	// The warm reader says it once; each cold query (runs of them) again.
	if len(said) < 1+runs || !strings.Contains(said[0], ".day") {
		t.Fatalf("%d warnings, want at least %d naming the rollup: %q", len(said), 1+runs, said)
	}
}

// TestFormatUnmeasured: ClickHouse's row has no cold queries and no live
// heap (the server's peak RSS is its writer heap): the report prints "-"
// there, as it does for ingest/cpu-s, not a 0.00 ms that reads as a
// measurement beside the ledger's.
func TestFormatUnmeasured(t *testing.T) {
	o := small(1)
	ms := time.Millisecond
	rep := &Report{Options: o, ReachDays: reachDays, Authors: nAuthors, Subject: querySubject(o), Rows: []Row{
		{Store: "warden ledger", Ingest: time.Second, IngestCPU: time.Second, IngestAll: time.Second, Bytes: 1 << 20,
			Reach: Reach{Wall: ms, Cold: 5 * ms}, Cut: Reach{Wall: ms, Cold: 6 * ms}, WhoTook: ms, WhoTookCold: 7 * ms, WriterMaxRSS: 3 << 20, WriterLive: 2 << 20},
		{Store: "clickhouse 18.16.1", Ingest: time.Second, IngestAll: time.Second, Bytes: 1 << 20,
			Reach: Reach{Wall: 90 * ms}, Cut: Reach{Wall: 91 * ms}, WhoTook: 92 * ms, WriterMaxRSS: 700 << 20},
	}}
	var out strings.Builder
	rep.Format(&out, "warden bench ledger")
	lines := strings.Split(out.String(), "\n")
	var ledgerRow, chRow []string
	for _, l := range lines {
		switch f := strings.Fields(l); {
		case strings.HasPrefix(l, "warden ledger"):
			ledgerRow = f[2:]
		case strings.HasPrefix(l, "clickhouse 18"):
			chRow = f[2:]
		}
	}
	// ingest/s, ingest/cpu-s, ingest+seal s, bytes/acc, reach ms, cold ms,
	// cut ms, cut cold, who-took, cold ms, reach, cut reach, writer heap
	// (2 fields), live heap (2 fields, or "-").
	if len(chRow) < 15 || chRow[5] != "-" || chRow[7] != "-" || chRow[9] != "-" || chRow[14] != "-" || chRow[1] != "-" {
		t.Errorf("clickhouse row %q: want - for ingest/cpu-s, the three cold columns and live heap\n%s", chRow, out.String())
	}
	if len(ledgerRow) < 16 || ledgerRow[5] != "5.00" || ledgerRow[7] != "6.00" || ledgerRow[9] != "7.00" || ledgerRow[14] != "2" || ledgerRow[15] != "MiB" {
		t.Errorf("ledger row %q\n%s", ledgerRow, out.String())
	}
}
