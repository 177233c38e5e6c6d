package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// rig is a Disk on a temporary directory with a memory store journaling to
// it, at a clock the test moves.
type rig struct {
	dir  string
	now  atomic.Int64
	logs *bytes.Buffer
	d    *Disk
	st   *memory.Store
	sum  Summary
}

func (r *rig) clock() time.Time { return time.Unix(0, r.now.Load()).UTC() }

// open opens dir as a restart would: Disk, store with the snapshot's key,
// restore.
func open(t *testing.T, dir string, at time.Time) *rig {
	t.Helper()
	r := &rig{dir: dir, logs: new(bytes.Buffer)}
	r.now.Store(at.UnixNano())
	d, err := Open(Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(r.logs, nil)), Now: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	r.st = memory.New(memory.Options{SweepEvery: -1, Shards: 16, HashKey: d.HashKey(), Bans: d})
	if r.sum, err = d.Restore(context.Background(), r.st); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) close(t *testing.T, snapshot bool) {
	t.Helper()
	var s State
	if snapshot {
		s = r.st
	}
	if err := r.d.Close(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func limit(key string) store.LimitRequest {
	return store.LimitRequest{Key: key, Interval: time.Minute, Burst: 3, Cost: 1}
}

func admit(t *testing.T, st *memory.Store, at time.Time, key string) store.LimitResult {
	t.Helper()
	res, err := st.Admit(context.Background(), at, &store.AdmitRequest{Limits: []store.LimitRequest{limit(key)}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Limits[0]
}

func spend(t *testing.T, st *memory.Store, at time.Time, key string, lim int, subjects ...uint64) store.SpendResult {
	t.Helper()
	res, err := st.Spend(context.Background(), at, []store.SpendRequest{{Key: key, Window: 24 * time.Hour, Limit: lim, Subjects: subjects}})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func seq(from, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(from + i)
	}
	return out
}

// fill puts one of everything in r's store.
func fill(t *testing.T, r *rig) {
	t.Helper()
	ctx, at := context.Background(), r.clock()
	admit(t, r.st, at, "ip:1") // 2 of 3 left
	admit(t, r.st, at, "ip:1") // 1 left
	spend(t, r.st, at, "budget:small", 10, 1, 2, 3)
	spend(t, r.st, at, "budget:sketch", 5000, seq(1, 2000)...) // past ExactMax: a sketch
	if err := r.st.Link(ctx, at, "link:small", []uint64{7, 8, 9}, store.Social, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Link(ctx, at, "link:big", seq(1000, 4000), store.Search, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	// The fan-out cap's state: answer fanB showed 1010-1014, one opened;
	// answer fanA showed 1000-1009, three opened and a fourth past the
	// cap: link:big is held for 10 minutes.
	if err := r.st.Link(ctx, at, "link:big", seq(1010, 5), store.Search, fanB, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := opens(t, r.st, at, "link:big", 1010); !slices.Equal(got, []bool{false}) {
		t.Fatalf("link:big open from answer B: capped %v", got)
	}
	if err := r.st.Link(ctx, at, "link:big", seq(1000, 10), store.Search, fanA, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := opens(t, r.st, at, "link:big", 1000, 1001, 1002, 1003); !slices.Equal(got, []bool{false, false, false, true}) {
		t.Fatalf("link:big opens from answer A: capped %v, want the 4th", got)
	}
	for _, b := range []store.Ban{
		{Facet: "ip", Value: "10.0.0.1", Reason: "scraper", By: "ops", Created: at, Until: at.Add(time.Hour)},
		{Facet: "account", Value: "77", Reason: "forever", By: "ops", Created: at},
		{Facet: "ip", Value: "10.0.0.2", Reason: "short", By: "ops", Created: at, Until: at.Add(time.Minute)},
		{Facet: "ip", Value: "10.0.0.3", Reason: "removed", By: "ops", Created: at},
	} {
		if err := r.st.PutBan(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := r.st.RemoveBan(ctx, store.BanKey{Facet: "ip", Value: "10.0.0.3"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
}

// Answer tags of fill's fan-out state.
const (
	fanA = 0x9e3779b9 // a 5-byte uvarint
	fanB = 77
)

// fanCap is the lab's per-answer cap: 3 people per answer within 10
// minutes, a 10-minute hold past it, search and list capped.
func fanCap() *store.Fanout {
	return &store.Fanout{Limit: 3, Window: 10 * time.Minute, Hold: 10 * time.Minute, Provenances: 1<<store.Search | 1<<store.List}
}

// opens opens ids of key's link memory under fanCap, one look-up each (as
// requests would), and returns which were capped.
func opens(t *testing.T, st *memory.Store, at time.Time, key string, ids ...uint64) []bool {
	t.Helper()
	var out []bool
	for _, id := range ids {
		fan := fanCap()
		if _, err := st.Linked(context.Background(), at, key, []uint64{id}, fan, nil); err != nil {
			t.Fatal(err)
		}
		out = append(out, fan.Capped[0])
	}
	return out
}

// check asserts that r's store holds what fill put, seen at at.
func check(t *testing.T, r *rig, at time.Time) {
	t.Helper()
	if got := admit(t, r.st, at, "ip:1"); !got.Allowed || got.Remaining != 0 {
		t.Errorf("limit after restore: %+v, want allowed with 0 left (2 spent before)", got)
	}
	if got := spend(t, r.st, at, "budget:small", 10, 3, 4); got.Count != 4 || !got.Allowed[0] {
		t.Errorf("small budget after restore: %+v, want count 4", got)
	}
	if got := spend(t, r.st, at, "budget:sketch", 5000, 1500); got.Count < 1950 || got.Count > 2050 {
		t.Errorf("sketch budget after restore: count %d, want about 2000", got.Count)
	}
	for _, l := range []struct {
		key string
		ids []uint64
		p   store.Provenance
	}{{"link:small", []uint64{7, 8, 9}, store.Social}, {"link:big", seq(1000, 4000), store.Search}} {
		got, _ := r.st.Linked(context.Background(), at, l.key, l.ids, nil, nil)
		for i, p := range got {
			if p != l.p {
				t.Fatalf("%s: id %d is %v after restore, want %v", l.key, l.ids[i], p, l.p)
			}
		}
	}
	if got, _ := r.st.Linked(context.Background(), at, "link:small", []uint64{10}, nil, nil); got[0] != store.Unreferenced {
		t.Error("link:small: id 10 was never linked")
	}
	if got := opens(t, r.st, at, "link:big", 1004); !got[0] {
		t.Error("link:big: the fan-out hold did not survive the restore")
	}
	bans, _ := r.st.ListBans(context.Background(), at)
	var names []string
	for _, b := range bans {
		names = append(names, b.Facet+"="+b.Value+":"+b.Reason)
	}
	if got := strings.Join(names, ","); got != "account=77:forever,ip=10.0.0.1:scraper,ip=10.0.0.2:short" {
		t.Errorf("bans after restore: %s", got)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	fill(t, r)
	r.close(t, true) // graceful stop: a last snapshot
	r2 := open(t, dir, t0.Add(time.Second))
	check(t, r2, t0.Add(time.Second))
	if r2.sum.Restored.Limits != 1 || r2.sum.Restored.Budgets != 2 || r2.sum.Restored.Links != 2 || r2.sum.Bans != 3 {
		t.Fatalf("summary %+v", r2.sum)
	}
	r2.close(t, false)
}

// Without a snapshot (kill -9 before the first) the bans are still there.
func TestBansWithoutSnapshot(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	fill(t, r)
	r.d.bans.close() // as a crash: no snapshot
	r.d.unlock()
	r2 := open(t, dir, t0.Add(time.Second))
	bans, _ := r2.st.ListBans(context.Background(), r2.clock())
	if len(bans) != 3 {
		t.Fatalf("bans after a crash: %+v", bans)
	}
	if got := admit(t, r2.st, r2.clock(), "ip:1"); got.Remaining != 2 {
		t.Fatalf("limit without a snapshot: %+v, want a fresh key", got)
	}
}

// A ban limited to anonymous requests stays so across a restart and a
// compaction of the ban log; a ban without the flag is written as before
// (no flags byte), so logs of earlier builds read the same.
func TestBanLogKeepsAnonymous(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	ctx := context.Background()
	anon := store.Ban{Facet: "ip", Value: "7.0.0.1", Reason: "r", By: "detector", Created: t0, Until: t0.Add(time.Hour), Anonymous: true}
	all := store.Ban{Facet: "ip", Value: "7.0.0.2", Reason: "r", By: "detector", Created: t0, Until: t0.Add(time.Hour)}
	for _, b := range []store.Ban{anon, all} {
		if err := r.st.PutBan(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	check := func(r *rig, when string) {
		t.Helper()
		bans, err := r.st.ListBans(ctx, r.clock())
		if err != nil || len(bans) != 2 || !bans[0].Anonymous || bans[1].Anonymous {
			t.Fatalf("%s: %+v %v", when, bans, err)
		}
	}
	r.d.bans.close() // as a crash: the log alone
	r.d.unlock()
	r2 := open(t, dir, t0)
	check(r2, "after a restart")
	if err := r2.d.Snapshot(ctx, r2.st); err != nil { // compacts the log
		t.Fatal(err)
	}
	r2.close(t, false)
	r3 := open(t, dir, t0)
	defer r3.close(t, false)
	check(r3, "after compaction")
	if got, want := len(appendBan(nil, opPut, all)), len(appendBan(nil, opPut, anon))-1; got != want {
		t.Fatalf("a ban without flags is %d bytes, want %d (no flags byte)", got, want)
	}
}

// A restart a day later: windows and expiries are absolute.
func TestExpiredStateDropped(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	fill(t, r)
	r.close(t, true)
	later := t0.Add(25 * time.Hour)
	r2 := open(t, dir, later)
	if s := r2.sum; s.Restored.Limits+s.Restored.Budgets+s.Restored.Links != 0 || s.Restored.Dropped != 5 || s.Bans != 1 {
		t.Fatalf("a day later: %+v, want everything but the ban without expiry dropped", s)
	}
	if st := r2.st.Stats(); st.Keys != 0 || st.Bans != 1 {
		t.Fatalf("stats a day later: %+v", st)
	}
	// Two minutes later: only the one-minute ban has expired.
	r2.close(t, false)
	r3 := open(t, dir, t0.Add(2*time.Minute))
	if r3.sum.Bans != 2 {
		t.Fatalf("bans after 2 min: %d, want 2", r3.sum.Bans)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir, t0)
	fill(t, r)
	r.close(t, true)
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	if !strings.Contains(r.logs.String(), "not 0700") {
		t.Errorf("no log line for the mode change:\n%s", r.logs)
	}
	for _, f := range []string{SnapshotFile, BanLogFile, lockFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", f, fi.Mode(), err)
		}
	}
}

func TestOneWardenPerDir(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another warden") {
		t.Fatalf("second open: %v", err)
	}
	r.close(t, false)
	d, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	d.Close(context.Background(), nil)
}

// Links planted in the state directory (before it was made 0700, or by
// anyone who could write there) are never followed: warden, often root,
// would otherwise chmod, truncate or overwrite their targets. Each is set
// aside with a log line and warden starts, snapshots, rewrites its ban
// log and restarts on files of its own.
func TestPlantedLinksNeverFollowed(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	names := []string{SnapshotFile, BanLogFile, lockFile, SnapshotFile + ".tmp", BanLogFile + ".tmp"}
	victim := func(name string) string { return filepath.Join(outside, "victim-"+name) }
	for _, name := range names {
		if err := os.WriteFile(victim(name), []byte("not warden's: "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim(name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	r := open(t, dir, t0)
	fill(t, r)
	if err := r.d.Snapshot(context.Background(), r.st); err != nil {
		t.Fatal(err)
	}
	if err := r.st.WithBans(context.Background(), func(_ context.Context, bans []store.Ban) error {
		return r.d.bans.rewrite(bans, r.clock())
	}); err != nil {
		t.Fatal(err)
	}
	r.close(t, true)
	for _, name := range names {
		fi, err := os.Stat(victim(name))
		b, _ := os.ReadFile(victim(name))
		if err != nil || fi.Mode().Perm() != 0o644 || string(b) != "not warden's: "+name {
			t.Errorf("%s's link target changed: %v %v, %d bytes", name, fi.Mode(), err, len(b))
		}
	}
	for _, name := range []string{SnapshotFile, BanLogFile, lockFile} {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v %v, want warden's own regular file", name, fi.Mode(), err)
		}
		aside, _ := filepath.Glob(filepath.Join(dir, name+".corrupt-*"))
		if len(aside) != 1 {
			t.Errorf("%s set aside as %v, want one", name, aside)
		} else if target, err := os.Readlink(aside[0]); err != nil || target != victim(name) {
			t.Errorf("%s kept as %q %v, want the link itself", name, target, err)
		}
	}
	if !strings.Contains(r.logs.String(), "not a regular file: set aside") {
		t.Errorf("no log line:\n%s", r.logs)
	}
	r2 := open(t, dir, t0.Add(time.Second))
	defer r2.close(t, false)
	check(t, r2, t0.Add(time.Second))
}

// A directory or a FIFO where a state file belongs: set aside, and warden
// starts (a FIFO opened for reading would block the start for ever).
func TestStateFileNotRegular(t *testing.T) {
	for _, name := range []string{SnapshotFile, BanLogFile, lockFile} {
		for _, kind := range []string{"dir", "fifo"} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, name)
				var err error
				if kind == "dir" {
					err = os.Mkdir(path, 0o700)
				} else {
					err = syscall.Mkfifo(path, 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
				r := open(t, dir, t0)
				fill(t, r)
				r.close(t, true)
				r2 := open(t, dir, t0.Add(time.Second))
				defer r2.close(t, false)
				check(t, r2, t0.Add(time.Second))
				if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 1 {
					t.Fatalf("set aside: %v", aside)
				}
			})
		}
	}
}

// Every way a snapshot can be damaged: warden starts, from the ban log
// alone, and the file is set aside with a log line.
func TestCorruptSnapshot(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	fill(t, r)
	r.close(t, true)
	good, err := os.ReadFile(filepath.Join(dir, SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	cases := map[string][]byte{
		"empty":            {},
		"header only":      good[:snapHeader],
		"truncated":        good[:len(good)/2],
		"no end frame":     good[:len(good)-20],
		"flipped in meta":  flip(snapHeader + frameHeader + 3),
		"flipped middle":   flip(len(good) / 2),
		"flipped at end":   flip(len(good) - 1),
		"bad magic":        flip(0),
		"newer version":    flip(9),
		"trailing garbage": append(bytes.Clone(good), 1, 2, 3),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, SnapshotFile), data, 0o600); err != nil {
				t.Fatal(err)
			}
			log, _ := os.ReadFile(filepath.Join(r.dir, BanLogFile))
			os.WriteFile(filepath.Join(dir, BanLogFile), log, 0o600)
			r2 := open(t, dir, t0.Add(time.Second))
			defer r2.close(t, false)
			if r2.sum.Snapshot != (time.Time{}) || r2.st.Stats().Keys != 0 {
				t.Fatalf("a damaged snapshot loaded: %+v", r2.sum)
			}
			if r2.sum.Bans != 3 {
				t.Fatalf("bans from the log: %d, want 3", r2.sum.Bans)
			}
			if !strings.Contains(r2.logs.String(), "snapshot unreadable: set aside") {
				t.Fatalf("no log line:\n%s", r2.logs)
			}
			aside, _ := filepath.Glob(filepath.Join(dir, SnapshotFile+".corrupt-*"))
			if len(aside) != 1 {
				t.Fatalf("set aside: %v", aside)
			}
			if b, _ := os.ReadFile(aside[0]); !bytes.Equal(b, data) {
				t.Fatal("the file set aside is not the damaged one")
			}
			if name == "newer version" && !strings.Contains(r2.logs.String(), "written by a newer warden") {
				t.Fatalf("newer version not named:\n%s", r2.logs)
			}
		})
	}
}

// Cutting the log anywhere keeps every record before the cut; the torn
// bytes are kept beside it, and the log takes appends again.
func TestTornBanLog(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	ctx := context.Background()
	for i := range 5 {
		if err := r.st.PutBan(ctx, store.Ban{Facet: "ip", Value: fmt.Sprintf("10.0.0.%d", i), Reason: "x", Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	r.close(t, false)
	full, _ := os.ReadFile(filepath.Join(dir, BanLogFile))
	rec := (len(full) - banLogHeader) / 5
	for cut := banLogHeader; cut < len(full); cut += 7 {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, BanLogFile), full[:cut], 0o600)
			r2 := open(t, dir, t0)
			whole := (cut - banLogHeader) / rec
			if r2.sum.Bans != whole {
				t.Fatalf("cut at %d: %d bans, want %d", cut, r2.sum.Bans, whole)
			}
			torn := (cut - banLogHeader) % rec
			tails, _ := filepath.Glob(filepath.Join(dir, BanLogFile+".tail-*"))
			if (torn != 0) != (len(tails) == 1) {
				t.Fatalf("cut at %d: tails %v", cut, tails)
			}
			if torn != 0 {
				if b, _ := os.ReadFile(tails[0]); !bytes.Equal(b, full[cut-torn:cut]) {
					t.Fatalf("tail kept %q, want %q", b, full[cut-torn:cut])
				}
			}
			if err := r2.st.PutBan(ctx, store.Ban{Facet: "ip", Value: "10.9.9.9", Created: t0}); err != nil {
				t.Fatal(err)
			}
			r2.close(t, false)
			r3 := open(t, dir, t0)
			defer r3.close(t, false)
			if r3.sum.Bans != whole+1 || r3.sum.TailCut != 0 {
				t.Fatalf("after an append: %+v", r3.sum)
			}
		})
	}
}

func TestCorruptBanLogRecord(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	for i := range 3 {
		r.st.PutBan(context.Background(), store.Ban{Facet: "ip", Value: fmt.Sprintf("10.0.0.%d", i), Created: t0})
	}
	r.close(t, false)
	path := filepath.Join(dir, BanLogFile)
	b, _ := os.ReadFile(path)
	rec := (len(b) - banLogHeader) / 3
	b[banLogHeader+rec+frameHeader+2] ^= 1 // the second record's payload
	os.WriteFile(path, b, 0o600)
	r2 := open(t, dir, t0)
	defer r2.close(t, false)
	if r2.sum.Bans != 1 || r2.sum.TailCut != int64(2*rec) {
		t.Fatalf("%+v, want the first ban and 2 records cut", r2.sum)
	}
	if !strings.Contains(r2.logs.String(), "checksum mismatch") {
		t.Fatalf("cause not logged:\n%s", r2.logs)
	}
}

// A log mostly of dead records is rewritten after a snapshot.
func TestBanLogCompaction(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	ctx := context.Background()
	for i := range 3000 {
		b := store.Ban{Facet: "ip", Value: fmt.Sprint(i % 10), Created: t0, Until: t0.Add(time.Hour)}
		if err := r.st.PutBan(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := r.d.bans.stats(); n != 3000 {
		t.Fatalf("records %d", n)
	}
	if err := r.d.Snapshot(ctx, r.st); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.d.bans.stats(); n != 10 {
		t.Fatalf("records after compaction %d, want 10", n)
	}
	r.st.PutBan(ctx, store.Ban{Facet: "ip", Value: "new", Created: t0})
	r.close(t, false)
	r2 := open(t, dir, t0)
	defer r2.close(t, false)
	if r2.sum.Bans != 11 || r2.sum.BanLog != 11 {
		t.Fatalf("after compaction and restart: %+v", r2.sum)
	}
}

// A snapshot taken while requests run is consistent per key: each budget
// is given subjects 1, 2, 3, ... in order, so whatever a snapshot caught
// of it is a prefix of that sequence, and each limit key's TAT only grows.
func TestSnapshotUnderLoad(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := map[int]uint64{}
			for i := 0; ctx.Err() == nil; i++ {
				k := i % 200
				next[k]++
				key := fmt.Sprintf("w%d:b%d", w, k)
				r.st.Spend(ctx, t0, []store.SpendRequest{{Key: key, Window: 24 * time.Hour, Limit: 1 << 20, Subjects: []uint64{next[k]}}})
				r.st.Admit(ctx, t0, &store.AdmitRequest{Limits: []store.LimitRequest{{Key: key, Interval: time.Second, Burst: 1 << 30, Cost: 1}}})
			}
		}()
	}
	for range 5 {
		if err := r.d.Snapshot(context.Background(), r.st); err != nil {
			t.Fatal(err)
		}
		var st memory.ShardState
		f, _ := os.Open(filepath.Join(dir, SnapshotFile))
		_, err := readSnapshot(f, func(s *memory.ShardState) {
			for _, b := range s.Budgets {
				seen := map[uint64]bool{}
				for _, x := range b.Subjects {
					seen[x] = true
				}
				for i := 1; i <= len(b.Subjects); i++ {
					if !seen[uint64(i)] {
						t.Errorf("budget %x: subjects %v are not 1..%d", b.Key, b.Subjects, len(b.Subjects))
						return
					}
				}
			}
			_ = st
		}, nil)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	r.close(t, true)
	r2 := open(t, dir, t0)
	defer r2.close(t, false)
	if got := r2.st.Stats().Keys; got != 800 {
		t.Fatalf("keys after restore %d, want 800 (2 workers × 200 keys × a limit and a budget)", got)
	}
}

// TestReadsVersion1 reads a version 1 snapshot kept in testdata: every
// later warden must still read it. Its link generations have no
// provenances: the exact one restores as shown in a list (the worst of a
// shown id), the bloom filter is dropped (it cannot say which ids it held).
func TestReadsVersion1(t *testing.T) {
	r := readsVersion(t, 1)
	defer r.close(t, false)
	if r.sum.Restored.Links != 1 || r.sum.Restored.Dropped != 1 {
		t.Fatalf("restore of version 1: %+v, want 1 link restored, the bloom filter dropped", r.sum)
	}
	at := t0.Add(time.Second)
	if got, _ := r.st.Linked(context.Background(), at, "link:small", []uint64{7, 8, 9, 10}, nil, nil); !slices.Equal(got, []store.Provenance{store.List, store.List, store.List, store.Unreferenced}) {
		t.Errorf("version 1 exact link: %v, want list for 7, 8, 9", got)
	}
	if got, _ := r.st.Linked(context.Background(), at, "link:bloom", []uint64{1000}, nil, nil); got[0] != store.Unreferenced {
		t.Errorf("version 1 bloom link: %v, want dropped", got)
	}
}

// TestReadsVersion2 reads the version 2 snapshot kept in testdata (the
// writer's before version 3 added the fan-out cap's state): every later
// warden must still read it.
func TestReadsVersion2(t *testing.T) {
	r := readsVersion(t, 2)
	defer r.close(t, false)
	if r.sum.Restored.Links != 2 || r.sum.Restored.Dropped != 0 {
		t.Fatalf("restore of version 2: %+v", r.sum)
	}
	at := t0.Add(time.Second)
	if got, _ := r.st.Linked(context.Background(), at, "link:small", []uint64{7, 8, 9, 10}, nil, nil); !slices.Equal(got, []store.Provenance{store.Social, store.Social, store.Social, store.Unreferenced}) {
		t.Errorf("version 2 link: %v, want social for 7, 8, 9", got)
	}
	if got, _ := r.st.Linked(context.Background(), at, "link:big", seq(1000, 4000), nil, nil); slices.ContainsFunc(got, func(p store.Provenance) bool { return p != store.Search }) {
		t.Errorf("version 2 link of 4,000 ids: not all search")
	}
	// Version 2 kept no answer tags: its ids are never counted.
	if got := opens(t, r.st, at, "link:big", 1000, 1001, 1002, 1003); slices.Contains(got, true) {
		t.Errorf("version 2 link: capped %v, want no answer counted", got)
	}
}

// TestReadsVersion3 reads the version 3 snapshot kept in testdata (the
// current writer's; -update writes it anew): the fan-out cap's state is
// back, link:big held past its cap.
func TestReadsVersion3(t *testing.T) {
	r := readsVersion(t, 3)
	defer r.close(t, false)
	if r.sum.Restored.Links != 2 || r.sum.Restored.Dropped != 0 {
		t.Fatalf("restore of version 3: %+v", r.sum)
	}
	at := t0.Add(time.Second)
	if got := opens(t, r.st, at, "link:big", 1000, 1009); !slices.Equal(got, []bool{true, true}) {
		t.Errorf("version 3 link held by the fan-out cap: capped %v, want held", got)
	}
	// After the hold (10 minutes from t0) and answer A's window: fresh.
	at = t0.Add(11 * time.Minute)
	if got := opens(t, r.st, at, "link:big", 1004, 1005, 1006, 1007); !slices.Equal(got, []bool{false, false, false, true}) {
		t.Errorf("version 3 link after the hold: capped %v, want a fresh count", got)
	}
}

// readsVersion reads testdata/snapshot-vN.bin, checks its entries, and
// returns a store restored from it.
func readsVersion(t *testing.T, v int) *rig {
	path := filepath.Join("testdata", fmt.Sprintf("snapshot-v%d.bin", v))
	if *update && v == snapVersion {
		dir := t.TempDir()
		r := open(t, dir, t0)
		fill(t, r)
		attach(r.d, &fixedDetect{det: detectFixture(t0)})
		r.close(t, true)
		b, _ := os.ReadFile(filepath.Join(dir, SnapshotFile))
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	var det store.DetectState
	info, err := readSnapshot(f, func(st *memory.ShardState) {
		for _, l := range st.Limits {
			got = append(got, fmt.Sprintf("limit tat=%d", l.TAT-t0.UnixNano()))
		}
		for _, b := range st.Budgets {
			got = append(got, fmt.Sprintf("budget start=%d window=%d subjects=%d sketch=%v", b.Start-t0.UnixNano(), b.Window, len(b.Subjects), b.Sketch != nil))
		}
		for _, l := range st.Links {
			got = append(got, fmt.Sprintf("link small=%d bits=%d expires=%d", len(l.Cur.Small), len(l.Cur.Bits), l.Cur.Expires-t0.UnixNano()))
		}
	}, &det)
	if err != nil {
		t.Fatal(err)
	}
	if info.version != v || !info.created.Equal(t0) || info.limits != 1 || info.budgets != 2 || info.links != 2 {
		t.Fatalf("info %+v", info)
	}
	if len(got) != 5 {
		t.Fatalf("entries %v", got)
	}
	// And it restores into a store made with its key.
	dir := t.TempDir()
	b, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(dir, SnapshotFile), b, 0o600)
	r := open(t, dir, t0.Add(time.Second))
	if r.sum.Version != v || r.sum.Restored.Limits != 1 || r.sum.Restored.Budgets != 2 {
		t.Fatalf("restore of version %d: %+v", v, r.sum)
	}
	if got := admit(t, r.st, t0.Add(time.Second), "ip:1"); got.Remaining != 0 {
		t.Fatalf("the version %d limit not found by key: %+v", v, got)
	}
	return r
}

// FuzzReadSnapshot: any bytes either read as a snapshot or fail; neither
// reading nor restoring what was read panics, and a snapshot that reads is
// the whole input. Each input is read as it is and with its frames'
// checksums made right: a mutation of a frame fails its checksum, so
// without the second reading the fuzzer never reaches the decoders.
func FuzzReadSnapshot(f *testing.F) {
	for _, name := range []string{"snapshot-v1.bin", "snapshot-v2.bin", "snapshot-v3.bin", "snapshot-v4.bin"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
			f.Add(b[:len(b)/3])
		}
	}
	f.Add([]byte(snapMagic + "\x01\x00\x00\x00\x00\x00\x00\x00"))
	f.Add(smallSnapshot(f))
	st := memory.New(memory.Options{SweepEvery: -1, Shards: 4})
	det := fuzzDetector(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range [][]byte{data, reframed(data, snapHeader)} {
			var ds store.DetectState
			info, err := readSnapshot(bytes.NewReader(b), func(s *memory.ShardState) { st.Import(t0, s) }, &ds)
			if err == nil && info.bytes != int64(len(b)) {
				t.Fatalf("snapshot read as %d of %d bytes", info.bytes, len(b))
			}
			if err == nil && (len(ds.Offences) != info.offences || len(ds.Tracks) != info.tracks) {
				t.Fatalf("detector state of %d and %d entries, the file counts %d and %d", len(ds.Offences), len(ds.Tracks), info.offences, info.tracks)
			}
			if err == nil {
				det.Restore(t0, &ds) // never panics, whatever it holds
			}
		}
	})
}

// smallSnapshot is a snapshot of one limit, one budget and one link of a
// few ids (with answer tags, one answer's opens and a hold) and a little
// detector state: a seed of every frame kind that the fuzzer mutates and
// minimises quickly (the fixtures are 30 and 60 kB, and minimising a new
// input of that size takes the fuzzer's whole minute).
func smallSnapshot(tb testing.TB) []byte {
	ctx := context.Background()
	st := memory.New(memory.Options{SweepEvery: -1, Shards: 1})
	defer st.Close()
	if _, err := st.Admit(ctx, t0, &store.AdmitRequest{Limits: []store.LimitRequest{limit("ip:1")}}); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Spend(ctx, t0, []store.SpendRequest{{Key: "budget", Window: 24 * time.Hour, Limit: 10, Subjects: []uint64{1, 2, 3}}}); err != nil {
		tb.Fatal(err)
	}
	if err := st.Link(ctx, t0, "link", []uint64{7, 8, 9}, store.Social, 0, time.Hour); err != nil {
		tb.Fatal(err)
	}
	// Answer tags (one of 5 uvarint bytes), an answer of one id and a hold.
	if err := st.Link(ctx, t0, "link", []uint64{8, 9}, store.Social, fanA, time.Hour); err != nil {
		tb.Fatal(err)
	}
	fan := &store.Fanout{Limit: 1, Window: time.Minute, Hold: time.Minute, Provenances: 1 << store.Social}
	if _, err := st.Linked(ctx, t0, "link", []uint64{8, 9}, fan, nil); err != nil || !slices.Equal(fan.Capped, []bool{false, true}) {
		tb.Fatalf("small snapshot's fan-out: capped %v, %v", fan.Capped, err)
	}
	var b bytes.Buffer
	// And the detector's state: one ban history, one track of one window
	// with tallies, one address's account.
	ns := t0.UnixNano()
	det := &store.DetectState{
		Offences: []store.DetectOffence{{Facet: "account", Value: "7", N: 2, Until: ns, Seen: ns, Banned: ns}},
		Tracks: []store.DetectTrack{{Kind: store.TrackFacet, Facet: "account", Value: "7", Windows: []store.DetectWindow{
			{Rule: "enum", Keys: []uint64{1}, At: []int64{ns}, Tally: true, Width: 625 * int64(time.Millisecond), Last: ns / (625 * int64(time.Millisecond))}}},
			{Kind: store.TrackAccounts, Facet: "ip", Value: "1", AccountsSeen: ns, Accounts: []store.DetectAccount{{Account: "7", Banned: true}}}},
	}
	if _, err := writeSnapshot(&b, st, det, t0); err != nil {
		tb.Fatal(err)
	}
	if info, err := readSnapshot(bytes.NewReader(b.Bytes()), nil, nil); err != nil || info.limits != 1 || info.budgets != 1 || info.links != 1 || info.offences != 1 || info.tracks != 2 {
		tb.Fatalf("small snapshot reads as %+v, %v", info, err)
	}
	return b.Bytes()
}

// reframed is a copy of data whose frames, from byte from on, have their
// checksums recomputed; it stops at the first frame that does not fit.
func reframed(data []byte, from int) []byte {
	b := bytes.Clone(data)
	for off := from; off+frameHeader <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n > len(b)-off-frameHeader {
			break
		}
		payload := b[off+frameHeader : off+frameHeader+n]
		binary.LittleEndian.PutUint32(b[off+4:], crc32.Checksum(payload, castagnoli))
		off += frameHeader + n
	}
	return b
}

// FuzzReadBanLog: any bytes replay to some bans or stop at a cut inside
// the input, and the part before the cut replays alone to the same bans.
// Each input is read as it is and with its frames' checksums made right
// (see FuzzReadSnapshot).
func FuzzReadBanLog(f *testing.F) {
	var l []byte
	l = append(l, banLogHeaderBytes()...)
	l = appendFrame(l, appendBan(nil, opPut, store.Ban{Facet: "ip", Value: "1", Reason: "r", By: "b", Created: t0, Until: t0.Add(time.Hour)}))
	l = appendFrame(l, appendBan(nil, opRemove, store.Ban{Facet: "ip", Value: "1"}))
	f.Add(l)
	f.Add(l[:len(l)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range [][]byte{data, reframed(data, banLogHeader)} {
			rep := replayed{bans: map[store.BanKey]store.Ban{}}
			good, _ := replay(bytes.NewReader(b), &rep)
			if good < 0 || good > int64(len(b)) {
				t.Fatalf("cut at %d of %d bytes", good, len(b))
			}
			rep2 := replayed{bans: map[store.BanKey]store.Ban{}}
			good2, err := replay(io.LimitReader(bytes.NewReader(b), good), &rep2)
			if err != nil || good2 != good || len(rep2.bans) != len(rep.bans) {
				t.Fatalf("the kept part does not replay alone: %v %d %d", err, good2, good)
			}
		}
	})
}
