package disk

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/detect"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// fixedDetect is a detector whose state is det.
type fixedDetect struct{ det store.DetectState }

func (f *fixedDetect) ExportDetect(_ time.Time, st *store.DetectState) {
	st.Reset()
	st.Offences = append(st.Offences, f.det.Offences...)
	st.Tracks = append(st.Tracks, f.det.Tracks...)
}

// attach has d's snapshots take the detector's state from src, and returns
// what d held for it.
func attach(d *Disk, src DetectSource) *store.DetectState {
	var held *store.DetectState
	d.Detector(src, func(st *store.DetectState) { held = st })
	return held
}

// detectFixture is a detector's state of every kind: two ban histories, a
// track with a window and an enumeration rule's tallies, a cohort's
// accounts and an address's.
func detectFixture(at time.Time) store.DetectState {
	ns := at.UnixNano()
	tally := store.DetectWindow{Rule: "enum", Keys: []uint64{5}, At: []int64{ns}, Tally: true, Width: 625 * int64(time.Millisecond), Last: ns / (625 * int64(time.Millisecond))}
	tally.All[3], tally.Unreferenced[3] = 7, 6
	return store.DetectState{
		Offences: []store.DetectOffence{
			{Facet: "account", Value: "777", N: 2, Until: ns + int64(time.Hour), Seen: ns, Banned: ns},
			{Facet: "ip", Value: "10.0.0.9", N: 1, Until: ns + int64(10*time.Minute), Seen: ns - 1, Banned: ns - 1, Everyone: true},
		},
		Tracks: []store.DetectTrack{
			{Kind: store.TrackFacet, Facet: "account", Value: "777", Windows: []store.DetectWindow{
				{Rule: "velocity", Keys: []uint64{1, 2, 3}, At: []int64{ns - 2, ns - 1, ns}}, tally}},
			{Kind: store.TrackCohort, Facet: "net", Value: "10.0.0.0/24", Windows: []store.DetectWindow{{Rule: "cohort", Keys: []uint64{9}, At: []int64{ns}}},
				Accounts: []store.DetectAccount{{Account: "55"}}},
			{Kind: store.TrackAccounts, Facet: "ip", Value: "10.0.0.9", AccountsSeen: ns, Accounts: []store.DetectAccount{{Account: "55", Banned: true}, {Account: "56"}}},
		},
	}
}

// TestReadsVersion4 reads the version 4 snapshot kept in testdata (the
// current writer's; -update writes it anew): the detector's state is read
// back whole, held for the detector.
func TestReadsVersion4(t *testing.T) {
	r := readsVersion(t, 4)
	if r.sum.DetectOffences != 2 || r.sum.DetectTracks != 3 {
		t.Fatalf("restore of version 4: %+v, want 2 ban histories and 3 tracks", r.sum)
	}
	want := detectFixture(t0)
	if got := attach(r.d, &fixedDetect{}); got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("detector state read back\n got %+v\nwant %+v", got, want)
	}
	r.close(t, false)
}

// The detector's state goes out with every snapshot and comes back at the
// next start, after a graceful stop (the last snapshot) as after a kill
// (the last periodic one); before a detector takes it over, a snapshot
// writes again what the last one held, so a restart in between keeps it.
func TestSnapshotKeepsDetectState(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	if held := attach(r.d, &fixedDetect{det: detectFixture(t0)}); held != nil {
		t.Fatalf("a fresh directory held detector state %+v", held)
	}
	r.close(t, true)

	// Restart; a snapshot before the detector takes over, then kill (no
	// last snapshot).
	r = open(t, dir, t0.Add(time.Second))
	if r.sum.DetectOffences != 2 || r.sum.DetectTracks != 3 {
		t.Fatalf("restore: %+v", r.sum)
	}
	if err := r.d.Snapshot(context.Background(), r.st); err != nil {
		t.Fatal(err)
	}
	r.close(t, false)

	r = open(t, dir, t0.Add(2*time.Second))
	want := detectFixture(t0)
	if got := attach(r.d, nil); got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("detector state after two restarts\n got %+v\nwant %+v", got, want)
	}
	// Taken over by a detector with nothing: the next snapshot holds none.
	attach(r.d, &fixedDetect{})
	r.close(t, true)
	r = open(t, dir, t0.Add(3*time.Second))
	defer r.close(t, false)
	if r.sum.DetectOffences != 0 || r.sum.DetectTracks != 0 || attach(r.d, nil) != nil {
		t.Fatalf("a detector's empty state came back as %+v", r.sum)
	}
}

// A damaged detector frame (its checksum right: a bug's or a forger's)
// makes the whole snapshot unreadable: it is set aside, and warden starts
// from the ban log alone, the bans kept.
func TestDamagedDetectFrame(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, t0)
	if err := r.st.PutBan(context.Background(), store.Ban{Facet: "ip", Value: "10.0.0.1", By: "test", Created: t0, Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	attach(r.d, &fixedDetect{det: detectFixture(t0)})
	fill(t, r)
	r.close(t, true)
	path := filepath.Join(dir, SnapshotFile)
	b, _ := os.ReadFile(path)
	// The tracks frame's account flag: 1 -> 2, checksum made right.
	i := bytes.Index(b, []byte("\x0255\x01"))
	if i < 0 {
		t.Fatal("no account flag in the snapshot")
	}
	b[i+3] = 2
	os.WriteFile(path, reframed(b, snapHeader), 0o600)
	r = open(t, dir, t0.Add(time.Second))
	defer r.close(t, false)
	if !strings.Contains(r.logs.String(), "snapshot unreadable") || !strings.Contains(r.logs.String(), "flag byte 2") {
		t.Fatalf("damaged detector frame not set aside:\n%s", r.logs)
	}
	if r.sum.Restored.Budgets != 0 || attach(r.d, nil) != nil {
		t.Fatalf("restore after a damaged detector frame: %+v", r.sum)
	}
	if bans, _ := r.st.ListBans(context.Background(), t0.Add(time.Second)); !slices.ContainsFunc(bans, func(b store.Ban) bool { return b.Value == "10.0.0.1" }) {
		t.Fatalf("the ban log's ban lost with the snapshot: %v", bans)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("set aside: %v", m)
	}
}

// readDetect reads b's detector state.
func readDetect(b []byte) (store.DetectState, error) {
	var det store.DetectState
	_, err := readSnapshot(bytes.NewReader(b), func(*memory.ShardState) {}, &det)
	return det, err
}

// fuzzDetector is a detector with the rules detectFixture's windows name,
// for FuzzReadSnapshot to restore what it read into.
func fuzzDetector(tb testing.TB) *detect.Detector {
	d, err := detect.New(detect.Config{Enabled: true, AddressAfter: 2, Rules: []detect.Rule{
		{Name: "velocity", Kind: detect.Velocity, Limit: 3, Window: 10 * time.Second},
		{Name: "enum", Kind: detect.Enumeration, Limit: 3, Window: 10 * time.Second, Ratio: 0.5},
		{Name: "cohort", Kind: detect.Cohort, Facet: "net", Limit: 2, Window: time.Minute},
	}}, nil, memory.New(memory.Options{SweepEvery: -1}), shadow.New(prometheus.NewRegistry()), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// The whole way: a detector bans a value, a graceful stop writes its state
// with the last snapshot, and after the restart the detector restored from
// it bans the value again, once its first ban is over, for the second
// length.
func TestDetectorRestartEscalates(t *testing.T) {
	cfg := detect.Config{Enabled: true, Rules: []detect.Rule{{Name: "velocity", Kind: detect.Velocity, Limit: 2, Window: 10 * time.Second}}}
	dir := t.TempDir()
	r := open(t, dir, t0)
	d := newDetector(t, cfg, r)
	harvest(d, t0, "a")
	r.close(t, true)

	at := t0.Add(11 * time.Minute) // the first ban (10 min) over
	r = open(t, dir, at)
	defer r.close(t, false)
	d = newDetector(t, cfg, r)
	harvest(d, at, "b")
	bans, _ := r.st.ListBans(context.Background(), at)
	if len(bans) != 1 || !strings.Contains(bans[0].Reason, "offence 2, banned 1h0m0s") || !bans[0].Until.Equal(at.Add(time.Hour)) {
		t.Fatalf("after the restart, the repeat offender's ban: %+v, want offence 2 for 1h", bans)
	}
}

// newDetector is a detector of cfg banning into r's store, restored from
// r's disk and snapshotted by it.
func newDetector(t *testing.T, cfg detect.Config, r *rig) *detect.Detector {
	t.Helper()
	d, err := detect.New(cfg, nil, r.st, shadow.New(prometheus.NewRegistry()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.d.Detector(d, func(st *store.DetectState) { d.Restore(r.clock(), st) })
	return d
}

// harvest has account 9 served three people's contact details at at.
func harvest(d *detect.Detector, at time.Time, prefix string) {
	id := identify.Identity{Account: "9", IP: netip.MustParseAddr("10.0.0.3"), AccountCreated: at.AddDate(-1, 0, 0)}
	for i := range 3 {
		s := fmt.Sprint(prefix, i)
		d.Record(&inspect.Access{Identity: id, Time: at, Route: "GET /v1/users/{id}", Lookup: s, Status: 200,
			Classes: []string{"contact"}, Records: []inspect.Record{{ID: s, Classes: 1}}})
	}
}
