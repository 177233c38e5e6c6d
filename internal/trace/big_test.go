package trace

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/lab/platform"
	"github.com/warden-gw/warden/internal/ledger"
)

// BenchmarkTraceLeak is the 49,000,000-record copy, generated
// from the lab and traced with the ledger of its harvest:
//
//	WARDEN_TRACE_RECORDS=49000000 go test ./internal/trace -run XXX \
//	    -bench TraceLeak -benchtime 1x -timeout 60m
//
// (skipped without WARDEN_TRACE_RECORDS; WARDEN_TRACE_PROFILE=FILE writes
// a CPU profile of the timed part). The lab's ground truth (its
// largest network, 10,000,000 profiles: id, username, e-mail, phone) is
// the harvest: 8 harvesting accounts read it as followers pages of 50,
// one pass after another until the copy has its records (4.9 passes for
// 49,000,000: a dump keeps every record served, as the 2019 one did),
// and 2,000 innocent accounts read 20 pages each, over 27 hours: 10 pages
// a second (the ledger's hours sealed, as they are when a copy turns up). Each page goes to the
// ledger as the gateway records it (ledger.Add) and, with the canaries
// the code shows that account on it, to the copy: NDJSON, streamed to a
// file in a temporary directory (free space checked first, removed after).
// Timed: warden trace's work, reading the file on every core and the
// report replaying the ledger (wall and CPU seconds reported). It fails
// when an innocent is accused or a harvester is not.
func BenchmarkTraceLeak(b *testing.B) { benchLeak(b, leakNDJSON) }

// BenchmarkTraceLeakContacts is BenchmarkTraceLeak with the copy written
// as contact details only (e-mail and phone, no id or username): its
// canaries are found by looking their values up among the canaries the
// ledger says were served (contact.go), at the cost of a second replay.
// It also reports the bytes allocated in the timed part (alloc-MB) and
// the contact values kept (contacts-kept).
func BenchmarkTraceLeakContacts(b *testing.B) { benchLeak(b, leakContacts) }

// BenchmarkTraceLeakSQL is BenchmarkTraceLeak with the copy written as the
// harvester's database dumped by mysqldump (a users table: INSERTs of
// 9,000 rows, about a megabyte each, as its default net_buffer_length
// makes them).
func BenchmarkTraceLeakSQL(b *testing.B) { benchLeak(b, leakSQL) }

// How a benchmark's copy is written.
const (
	leakNDJSON   = iota
	leakContacts // NDJSON of e-mails and phones only
	leakSQL      // a mysqldump
)

func benchLeak(b *testing.B, kind int) {
	n, _ := strconv.Atoi(os.Getenv("WARDEN_TRACE_RECORDS"))
	if n <= 0 {
		b.Skip("set WARDEN_TRACE_RECORDS (49000000: the issue's copy)")
	}
	dir := b.TempDir()
	profiles := min(platform.MaxProfiles, n)
	const perRecord = 100 // bytes of the copy a record, a little more than it takes
	if free := freeBytes(b, dir); free < int64(n)*perRecord*3/2 {
		b.Skipf("%s has %d MB free; the copy needs about %d MB", dir, free>>20, int64(n)*perRecord>>20)
	}
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, "leak-bench-canary-key-0123456789")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	truth, rows := labTruth(b, profiles)
	b.Logf("lab truth: %d profiles, %d MB, %v", profiles, len(truth)>>20, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	copyPath, harvesters, canaries := writeLeak(b, c, dir, truth, rows, n, kind)
	fi, err := os.Stat(copyPath)
	if err != nil {
		b.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "ledger", "*.wal"))
	all, _ := filepath.Glob(filepath.Join(dir, "ledger", "*"))
	b.Logf("copy: %d records (%d canaries), %d MB, and its ledger (%d files, %d of them open logs), written in %v",
		n, canaries, fi.Size()>>20, len(all), len(logs), time.Since(start).Round(time.Millisecond))
	truth = nil
	runtime.GC()
	b.ResetTimer()
	if p := os.Getenv("WARDEN_TRACE_PROFILE"); p != "" { // the timed part alone
		pf, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	for b.Loop() {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		wall0, cpu0 := time.Now(), cpuTime(b)
		f, err := os.Open(copyPath)
		if err != nil {
			b.Fatal(err)
		}
		t := New(c, 0)
		st, err := t.Read(f, nil)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		readWall, readCPU := time.Since(wall0), cpuTime(b)-cpu0
		led, err := ledger.OpenReader(filepath.Join(dir, "ledger"), ledger.Window{})
		if err != nil {
			b.Fatal(err)
		}
		rep := t.ReportEntries(led, 0)
		led.Close()
		wall, cpu := time.Since(wall0), cpuTime(b)-cpu0
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/(1<<20), "alloc-MB")
		b.ReportMetric(float64(len(t.contacts)), "contacts-kept")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(st.Bytes)/1e9/readWall.Seconds(), "read-GB/s")
		b.ReportMetric(float64(st.Bytes)/1e9/readCPU.Seconds(), "read-GB/cpu-s")
		b.Logf("traced %d records (%d MB, %s) in %v wall, %v CPU: read %v wall %v CPU, report %v; %d canaries found, %d accused, coverage set %d",
			rep.Records, st.Bytes>>20, st.Format, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), readWall.Round(time.Millisecond),
			readCPU.Round(time.Millisecond), (wall - readWall).Round(time.Millisecond), rep.CanariesFound, len(rep.Accused), len(rep.Coverage))
		if rep.Records != int64(n)+int64(canaries) {
			b.Fatalf("read %d records, wrote %d", rep.Records, n+canaries)
		}
		named := map[string]bool{}
		for _, a := range rep.Accused {
			if !harvesters[a.Value] {
				b.Fatalf("innocent %s:%s accused (score %v)", a.Facet, a.Value, a.Score)
			}
			named[a.Value] = true
		}
		if len(named) != len(harvesters) {
			b.Fatalf("%d of %d harvesters named: %+v", len(named), len(harvesters), rep.Accused)
		}
	}
}

// testWriter logs what the ledger logs (its failures) through the test.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

func freeBytes(tb testing.TB, dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		tb.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// labTruth is the lab's ground truth for profiles (platform.WriteTruth,
// seed 1) without its header, and where each row starts.
func labTruth(tb testing.TB, profiles int) ([]byte, []int) {
	var buf bytes.Buffer
	buf.Grow(profiles * 64)
	if err := platform.WriteTruth(&buf, profiles, 1); err != nil {
		tb.Fatal(err)
	}
	b := buf.Bytes()
	b = b[bytes.IndexByte(b, '\n')+1:]
	rows := make([]int, 0, profiles+1)
	for i := 0; i < len(b); {
		rows = append(rows, i)
		i += bytes.IndexByte(b[i:], '\n') + 1
	}
	return b, append(rows, len(b))
}

const leakRoute = "GET /v1/users/{id}/followers"

// writeLeak writes the harvest: the copy (NDJSON) and the ledger. It
// returns the copy's path, the harvesting accounts and the canaries in it.
func writeLeak(tb testing.TB, c *canary.Canaries, dir string, truth []byte, rows []int, n int, kind int) (string, map[string]bool, int) {
	contactOnly := kind == leakContacts
	log := slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The writer's clock is the harvest's: its background flush closes the
	// open hour once the clock has passed it, so under the real clock
	// (days later) it would close one at every tick and push the next
	// pages into later hours, up to the real one.
	var clock atomic.Int64
	now := func() time.Time { return time.UnixMicro(clock.Load()) }
	led, err := ledger.Open(ledger.Options{Dir: filepath.Join(dir, "ledger"), FsyncInterval: time.Hour, Logger: log, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "leak.ndjson")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	profiles := len(rows) - 1
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock.Store(t0.UnixMicro())
	e := &ledger.Entry{Route: leakRoute, Status: 200, Classes: []string{"profile"}}
	ids := make([][]byte, 50)
	var line []byte
	sqlRows := 0
	if kind == leakSQL {
		w.WriteString("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n/*!40101 SET NAMES utf8mb4 */;\n" +
			"DROP TABLE IF EXISTS `users`;\nCREATE TABLE `users` (\n  `id` bigint NOT NULL,\n  `username` varchar(64) NOT NULL,\n" +
			"  `email` varchar(255) DEFAULT NULL,\n  `phone` varchar(32) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\nLOCK TABLES `users` WRITE;\n")
	}
	// sqlRow writes a record as a row of mysqldump's INSERTs of 9,000.
	sqlRow := func(fs ...[]byte) {
		if sqlRows%9000 == 0 {
			if sqlRows > 0 {
				w.WriteString(";\n")
			}
			w.WriteString("INSERT INTO `users` VALUES (")
		} else {
			w.WriteString(",(")
		}
		w.Write(fs[0])
		for _, v := range fs[1:] {
			w.WriteString(",'")
			w.Write(bytes.ReplaceAll(bytes.ReplaceAll(v, []byte(`\`), []byte(`\\`)), []byte("'"), []byte(`\'`)))
			w.WriteByte('\'')
		}
		w.WriteByte(')')
		sqlRows++
	}
	// page adds one followers page, records from..from+len-1 of the truth
	// (wrapping), to the ledger as account's; with keep, to the copy too.
	page := func(k int, account string, from, size int, keep bool) int {
		e.Time = t0.Add(time.Duration(k) * 100 * time.Millisecond) // 10 pages a second: 49,000,000 records in 34 hours
		clock.Store(e.Time.UnixMicro())
		e.RequestID = "r" + strconv.Itoa(k)
		e.Identity = [ledger.NumFacets]string{}
		e.Identity[identify.FacetAccount-1] = account
		e.List = strconv.Itoa(1 + from/40%profiles)
		e.Records = e.Records[:0]
		for i := range size {
			r := truth[rows[(from+i)%profiles]:rows[(from+i)%profiles+1]]
			ids[i] = r[:bytes.IndexByte(r, ',')]
			e.Records = append(e.Records, ledger.Record{ID: string(ids[i]), Classes: 1})
		}
		led.Add(e)
		if !keep {
			return 0
		}
		shown := map[int]canary.Profile{}
		c.Plan(0, leakRoute, e.List, account, c.Bucket(e.Time), size, func(i int) []byte { return ids[i] }, func(i int, s canary.Slot, in bool) {
			if in {
				shown[i] = c.Canary(0, s.Canary)
			}
		})
		for i := range size {
			if p, ok := shown[i]; ok && kind == leakSQL {
				sqlRow(strconv.AppendInt(nil, p.ID, 10), []byte(p.Username), []byte(p.Email), []byte(p.Phone))
			} else if ok {
				if contactOnly {
					line = fmt.Appendf(line[:0], `{"email":%q,"phone":%q}`+"\n", p.Email, p.Phone)
				} else {
					line = fmt.Appendf(line[:0], `{"id":"%d","username":%q,"email":%q,"phone":%q}`+"\n", p.ID, p.Username, p.Email, p.Phone)
				}
				w.Write(line)
			}
			r := truth[rows[(from+i)%profiles] : rows[(from+i)%profiles+1]-1]
			var fs [4][]byte
			for j := range 3 {
				k := bytes.IndexByte(r, ',')
				fs[j], r = r[:k], r[k+1:]
			}
			fs[3] = r
			if kind == leakSQL {
				sqlRow(fs[:]...)
				continue
			}
			line = append(line[:0], `{"id":"`...)
			line = append(line, fs[0]...)
			line = append(line, `","username":"`...)
			line = append(line, fs[1]...)
			line = append(line, `","email":"`...)
			if contactOnly {
				line = append(line[:0], `{"email":"`...)
			}
			line = append(line, fs[2]...)
			line = append(line, `","phone":"`...)
			line = append(line, fs[3]...)
			line = append(line, "\"}\n"...)
			w.Write(line)
		}
		return len(shown)
	}
	harvesters := map[string]bool{}
	canaries, k := 0, 0
	rng := rand.New(rand.NewPCG(7, 11))
	// Pages of 40: a page of page.max (50) records has no room for a
	// canary (package canary's "Pages"), and a trace replays it as none.
	for from := 0; from < n; from += 40 {
		account := strconv.Itoa(9_000_001 + from/40%8) // 8 accounts take turns, page by page
		harvesters[account] = true
		canaries += page(k, account, from, min(40, n-from), true)
		k++
		if from/40%625 == 0 { // innocents read now and then, 20 pages each in all
			for range 1 {
				innocent := strconv.Itoa(1 + rng.IntN(2000))
				page(k, innocent, rng.IntN(profiles), 40, false)
				k++
			}
		}
	}
	if kind == leakSQL {
		w.WriteString(";\nUNLOCK TABLES;\n-- Dump completed on 2026-12-02 10:00:00\n")
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := led.Close(); err != nil {
		tb.Fatal(err)
	}
	// Opened again now, days later, the ledger seals its last hour too, as
	// it would be by the time a copy turns up.
	if led, err = ledger.Open(ledger.Options{Dir: filepath.Join(dir, "ledger"), Logger: log}); err != nil {
		tb.Fatal(err)
	}
	if err := led.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, harvesters, canaries
}
