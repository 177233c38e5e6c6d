package ledger

import (
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/inspect"
)

// batchInputs are n Accesses over three hours, as Entries and as
// inspect.Accesses: facet values the same strings Access after Access
// (front-cache hits, which consume a hash) or equal copies, up to 20
// records (past prefetch's 16 ids), ids from a pool large enough that
// the open hour's table passes prefetchSlots.
func batchInputs(n int) ([]Entry, []*inspect.Access) {
	accts := make([]string, 37)
	for i := range accts {
		accts[i] = fmt.Sprint("acct", i)
	}
	es := make([]Entry, n)
	accs := make([]*inspect.Access, n)
	for i := range n {
		at := t0.Add(time.Duration(i) * 3 * time.Hour / time.Duration(n))
		acct := accts[i%len(accts)]
		if i%3 == 0 {
			acct = strings.Clone(acct)
		}
		e := &es[i]
		*e = Entry{Time: at, RequestID: fmt.Sprintf("%024x", i), Route: "GET /v1/users/{id}/followers",
			List: fmt.Sprint("u", i%500), Page: fmt.Sprint("cursor", i%3), Status: 200, MaskRules: []string{"contacts"},
			Classes: []string{"contact", "profile"}}
		e.Identity = [NumFacets]string{"app" + fmt.Sprint(i%2), acct, fmt.Sprintf("10.0.%d.%d", i%7, i%251), fmt.Sprintf("10.0.%d.0/24", i%7), "fp"}
		if i%5 == 0 {
			e.Status, e.Rule, e.Facet, e.Identity[4] = 429, "per-ip", "ip", ""
		}
		for k := range 1 + i%20 {
			e.Records = append(e.Records, Record{ID: fmt.Sprint("r", (i*7+k*13)%40000), Classes: 0b11, Masked: uint64(k % 2)})
			e.Authors = append(e.Authors, fmt.Sprint("a", (i+k)%300))
			e.Links = append(e.Links, fmt.Sprint("a", k))
		}
		accs[i] = accessOf(e)
	}
	return es, accs
}

// logSums opens a ledger in a new directory under the key of keyDir
// (keyed hashes are then the same), runs write on it, closes it and
// returns the SHA-256 of each hour's log as last synced (taken in the
// fsync hook: a sealed hour's log is removed).
func logSums(t *testing.T, keyDir string, write func(l *Ledger)) map[string][sha256.Size]byte {
	t.Helper()
	dir := t.TempDir()
	if keyDir != "" {
		k, err := os.ReadFile(filepath.Join(keyDir, "key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "key"), k, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	sums := map[string][sha256.Size]byte{}
	c := &clock{t: t0}
	l, err := Open(Options{Dir: dir, Now: c.now, FsyncInterval: time.Hour, fsync: func(f *os.File) error {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			return err
		}
		mu.Lock()
		sums[filepath.Base(f.Name())] = sha256.Sum256(b)
		mu.Unlock()
		return f.Sync()
	}})
	if err != nil {
		t.Fatal(err)
	}
	write(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return sums
}

// The logs written by AddBatch and RecordBatch are byte for byte those
// written by Add and Record one Access after another, whatever the
// batches' sizes: the same frames, the same dictionary frames in the
// same order, across the hours' resets and the tables' growth. (A hash
// taken ahead used for another Access would add an id again, with a
// dictionary frame of its own, or give it another's integer.)
func TestBatchLogSameBytes(t *testing.T) {
	es, accs := batchInputs(6000)
	sizes := []int{1, 32, 2, 3, 31, 5, 64, 7}
	for _, c := range []struct {
		name         string
		single, many func(l *Ledger)
	}{
		{"Entry", func(l *Ledger) {
			for i := range es {
				l.Add(&es[i])
			}
		}, func(l *Ledger) {
			for i, k := 0, 0; i < len(es); k++ {
				j := min(len(es), i+sizes[k%len(sizes)])
				l.AddBatch(es[i:j])
				i = j
			}
		}},
		{"Access", func(l *Ledger) {
			for _, a := range accs {
				l.Record(a)
			}
		}, func(l *Ledger) {
			for i, k := 0, 0; i < len(accs); k++ {
				j := min(len(accs), i+sizes[k%len(sizes)])
				l.RecordBatch(accs[i:j])
				i = j
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var keyDir string
			one := logSums(t, "", func(l *Ledger) { keyDir = l.opts.Dir; c.single(l) })
			many := logSums(t, keyDir, c.many)
			if len(one) != 3 {
				t.Fatalf("logs of %d hours, want 3: %v", len(one), one)
			}
			for name, s := range one {
				if many[name] != s {
					t.Errorf("%s: batched log's SHA-256 %x, one by one %x", name, many[name], s)
				}
			}
			if len(many) != len(one) {
				t.Errorf("batched: %d logs, one by one %d", len(many), len(one))
			}
		})
	}
}

// A hash taken ahead stays valid: a table keeps its seed when it grows
// and when an hour's reset empties it, so the id hashed before either
// is found with that hash, not added again.
func TestPrefetchHashOutlivesGrowthAndReset(t *testing.T) {
	var tb strtab
	var pf prefetch
	pf.add(&tb, "x")
	pf.add(&tb, "y")
	seed := tb.seed
	x, _ := tb.intern("x")
	for i := range 100000 { // 16 slots to 262,144
		tb.intern(fmt.Sprint(i))
	}
	if tb.seed != seed {
		t.Fatal("growth changed the table's seed")
	}
	h, _ := pf.hash()
	if v, added := tb.internHash("x", h); added || v != x {
		t.Fatalf("x after growth: %d, added %v; want %d", v, added, x)
	}
	tb.reset()
	if tb.seed != seed {
		t.Fatal("reset changed the table's seed")
	}
	tb.intern("z")
	h, _ = pf.hash()
	if v, added := tb.internHash("y", h); !added || v != 1 {
		t.Fatalf("y after reset: %d, added %v; want 1, added", v, added)
	}
	if v, ok := tb.find("y"); !ok || v != 1 {
		t.Fatalf("y found as %d (%v) after its hashed intern, want 1", v, ok)
	}
	if maphash.String(tb.seed, "y") != h {
		t.Fatal("the hash taken ahead differs from the table's")
	}
}

// AddBatch allocates nothing (and RecordBatch nothing more than Record)
// per batch once the hour's dictionary holds
// the batch's ids.
func TestAddBatchAllocs(t *testing.T) {
	es, accs := batchInputs(64)
	for i := range es {
		es[i].Time, accs[i].Time = t0, t0
	}
	c := &clock{t: t0}
	l, err := Open(Options{Dir: t.TempDir(), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.AddBatch(es)
	l.RecordBatch(accs)
	if a := testing.AllocsPerRun(50, func() { l.AddBatch(es[:32]) }); a != 0 {
		t.Errorf("AddBatch of 32: %.1f allocations", a)
	}
	// Record allocates what an Identity's values cost (an address
	// formatted): RecordBatch no more.
	one := testing.AllocsPerRun(50, func() {
		for _, a := range accs[:32] {
			l.Record(a)
		}
	})
	if a := testing.AllocsPerRun(50, func() { l.RecordBatch(accs[:32]) }); a > one {
		t.Errorf("RecordBatch of 32: %.1f allocations, Record of the same 32: %.1f", a, one)
	}
}
