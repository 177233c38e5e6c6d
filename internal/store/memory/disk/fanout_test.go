package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// fanoutStore is a store at t1 (an hour after t0) whose link memories hold
// every shape of fan-out state: a held identity, an answer at its cap, two
// answers part used, ids shown without an answer tag (never counted), and
// ids in both generations with their tags.
func fanoutStore(t *testing.T, shards int) (*memory.Store, time.Time) {
	t.Helper()
	ctx := context.Background()
	st := memory.New(memory.Options{SweepEvery: -1, Shards: shards})
	link := func(at time.Time, key string, ids []uint64, p store.Provenance, tag uint32) {
		t.Helper()
		if err := st.Link(ctx, at, key, ids, p, tag, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Generations: what t0 and t0+30m showed becomes the old generation
	// when t1 shows more (the current one spans the ttl).
	link(t0, "acct:gens", seq(1, 3), store.Search, 101)
	link(t0.Add(30*time.Minute), "acct:gens", seq(4, 3), store.List, 102)
	t1 := t0.Add(time.Hour)
	link(t1, "acct:gens", seq(7, 3), store.Search, 103)
	opens(t, st, t1, "acct:gens", 1, 4, 7)

	link(t1, "acct:held", seq(1, 10), store.Search, fanA)
	if got := opens(t, st, t1, "acct:held", 1, 2, 3, 4); !slices.Equal(got, []bool{false, false, false, true}) {
		t.Fatalf("acct:held: capped %v", got)
	}
	link(t1, "acct:full", seq(1, 10), store.Search, fanA)
	opens(t, st, t1, "acct:full", 1, 2, 3)
	link(t1, "acct:part", seq(1, 10), store.List, fanA)
	link(t1, "acct:part", seq(11, 10), store.Search, fanB)
	opens(t, st, t1, "acct:part", 1, 11, 12)
	link(t1, "acct:untagged", seq(1, 10), store.Search, 0)
	opens(t, st, t1, "acct:untagged", 1, 2, 3, 4, 5)
	// Social is never capped by fanCap; its tag is still kept.
	link(t1, "acct:social", seq(1, 5), store.Social, fanB)
	return st, t1
}

// roundTrip snapshots src at at and restores it into a store with the
// same hash key and shards shards.
func roundTrip(t *testing.T, src *memory.Store, at time.Time, shards int) *memory.Store {
	t.Helper()
	var b bytes.Buffer
	if _, err := writeSnapshot(&b, src, nil, at); err != nil {
		t.Fatal(err)
	}
	dst := memory.New(memory.Options{SweepEvery: -1, Shards: shards, HashKey: src.HashKey()})
	var r memory.Restored
	if _, err := readSnapshot(bytes.NewReader(b.Bytes()), func(st *memory.ShardState) { r.Add(dst.Import(at, st)) }, nil); err != nil {
		t.Fatal(err)
	}
	if r.Links != 6 || r.Dropped != 0 {
		t.Fatalf("restored %+v, want 6 links", r)
	}
	return dst
}

// A store restored from a snapshot answers every fan-out look-up exactly as
// the store it was taken from, at the same clocks: same provenances, same
// ids capped, the same identity held, the same answers expiring.
func TestSnapshotKeepsFanout(t *testing.T) {
	orig, t1 := fanoutStore(t, 4)
	restored := roundTrip(t, orig, t1, 16) // another shard count: keys move
	keys := []string{"acct:gens", "acct:held", "acct:full", "acct:part", "acct:untagged", "acct:social"}
	ids := seq(1, 22)
	capped := map[string]int{}
	for _, at := range []time.Duration{0, time.Minute, 11 * time.Minute} {
		for _, key := range keys {
			for _, id := range ids {
				var got [2][]store.Provenance
				var gotCapped [2]bool
				for i, st := range []*memory.Store{orig, restored} {
					fan := fanCap()
					p, err := st.Linked(context.Background(), t1.Add(at), key, []uint64{id}, fan, nil)
					if err != nil {
						t.Fatal(err)
					}
					got[i], gotCapped[i] = p, fan.Capped[0]
				}
				if !slices.Equal(got[0], got[1]) || gotCapped[0] != gotCapped[1] {
					t.Fatalf("%s id %d at t1+%v: original %v capped %v, restored %v capped %v",
						key, id, at, got[0], gotCapped[0], got[1], gotCapped[1])
				}
				if at == 0 && gotCapped[0] {
					capped[key]++
				}
			}
		}
	}
	// What the comparison covered, at t1: acct:held caps all its ten
	// search ids; acct:full the seven not yet opened; acct:part passes 2
	// and 3 of answer A, caps 4, and from then on is held: 4-20 capped;
	// the untagged and social ones none; acct:gens opened one of each
	// answer, none capped.
	want := map[string]int{"acct:held": 10, "acct:full": 7, "acct:part": 17}
	for _, key := range keys {
		if capped[key] != want[key] {
			t.Errorf("%s: %d capped at t1, want %d", key, capped[key], want[key])
		}
	}
}

// The user-visible behaviour: an identity that opened up to the cap from
// one answer, and one held past it, are still so after a snapshot, a stop
// and a start.
func TestRestartKeepsFanoutCap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := open(t, dir, t0)
	for _, key := range []string{"acct:1", "acct:2"} {
		if err := r.st.Link(ctx, t0, key, seq(1, 10), store.Search, fanA, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if got := opens(t, r.st, t0, "acct:1", 1, 2, 3); slices.Contains(got, true) {
		t.Fatalf("acct:1 up to the cap: capped %v", got)
	}
	if got := opens(t, r.st, t0, "acct:2", 1, 2, 3, 4); !slices.Equal(got, []bool{false, false, false, true}) {
		t.Fatalf("acct:2 past the cap: capped %v", got)
	}
	r.close(t, true)

	at := t0.Add(time.Minute)
	r2 := open(t, dir, at)
	defer r2.close(t, false)
	if got := opens(t, r2.st, at, "acct:1", 2, 4); !slices.Equal(got, []bool{false, true}) {
		t.Errorf("acct:1 after the restart: re-view and 4th open capped %v, want the 4th only", got)
	}
	// acct:2 is held: a fresh answer does not release it.
	if err := r2.st.Link(ctx, at, "acct:2", seq(11, 10), store.Search, fanB, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := opens(t, r2.st, at, "acct:2", 11); !got[0] {
		t.Error("acct:2 after the restart: the hold was released")
	}
	// The hold ends when it would have without the restart (t0+10m).
	at = t0.Add(10*time.Minute + time.Second)
	if got := opens(t, r2.st, at, "acct:2", 11, 12, 13, 14); !slices.Equal(got, []bool{false, false, false, true}) {
		t.Errorf("acct:2 after the hold: capped %v", got)
	}
}

// links is a Source of one shard holding ls as they are, for the writer to
// encode what no store makes.
type links []memory.LinkState

func (l links) Shards() int       { return 1 }
func (l links) HashKey() [16]byte { return [16]byte{} }
func (l links) ExportShard(_ int, st *memory.ShardState) {
	st.Reset()
	st.Links = append(st.Links, l...)
}

// A frame counting more answers, or more ids in one, than a store holds
// fails to read, naming the link, the answer and the count's offset in
// the file.
func TestSnapshotFanoutBounds(t *testing.T) {
	gen := memory.LinkGenState{First: t0.UnixNano(), Expires: t0.Add(time.Hour).UnixNano(), Small: []uint64{1}, Prov: []byte{byte(store.Search)}, Tags: []uint32{7}}
	answers := func(n, ids int) []memory.AnswerState {
		out := make([]memory.AnswerState, n)
		for i := range out {
			out[i] = memory.AnswerState{Tag: uint32(i + 1), Expires: t0.Add(time.Minute).UnixNano(), IDs: seq(1, ids)}
		}
		return out
	}
	for _, c := range []struct {
		name    string
		answers []memory.AnswerState
		want    string
		count   uint64
	}{
		{"answers", answers(store.MaxFanoutAnswers+1, 1), "link 1: 65 answers, at most 64", 65},
		{"ids", answers(2, store.MaxFanoutLimit+1), "link 1 answer 0: 65 ids, at most 64", 65},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := links{{Key: 1, Cur: gen}, {Key: 2, Cur: gen, Answers: c.answers, Held: t0.Add(time.Minute).UnixNano()}}
			var b bytes.Buffer
			if _, err := writeSnapshot(&b, src, nil, t0); err != nil {
				t.Fatal(err)
			}
			_, err := readSnapshot(bytes.NewReader(b.Bytes()), nil, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("read: %v, want %q", err, c.want)
			}
			var at int
			if _, err := fmt.Sscanf(err.Error()[strings.LastIndex(err.Error(), "(byte "):], "(byte %d)", &at); err != nil {
				t.Fatalf("no offset in %v", err)
			}
			if v, n := binary.Uvarint(b.Bytes()[at:]); n <= 0 || v != c.count {
				t.Fatalf("byte %d holds %d, not the count %d", at, v, c.count)
			}
		})
	}
	// At the bounds it reads, and restores.
	src := links{{Key: 2, Cur: gen, Answers: answers(store.MaxFanoutAnswers, store.MaxFanoutLimit)}}
	var b bytes.Buffer
	if _, err := writeSnapshot(&b, src, nil, t0); err != nil {
		t.Fatal(err)
	}
	st := memory.New(memory.Options{SweepEvery: -1, Shards: 1})
	var r memory.Restored
	if _, err := readSnapshot(bytes.NewReader(b.Bytes()), func(s *memory.ShardState) { r.Add(st.Import(t0, s)) }, nil); err != nil || r.Links != 1 {
		t.Fatalf("at the bounds: %v, %+v", err, r)
	}
}

// Import drops fan-out state a store cannot hold or that has ended (an
// answer expired, of tag 0, or past the ids' bound; a hold ended) and
// keeps the rest of the filter.
func TestImportFanoutDrops(t *testing.T) {
	ns := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	// The key's hash, from a store that linked it.
	src := memory.New(memory.Options{SweepEvery: -1, Shards: 1})
	if err := src.Link(context.Background(), t0, "acct", seq(1, 5), store.Search, 5, time.Hour); err != nil {
		t.Fatal(err)
	}
	var s memory.ShardState
	src.ExportShard(0, &s)
	if len(s.Links) != 1 || !slices.Equal(s.Links[0].Cur.Tags, []uint32{5, 5, 5, 5, 5}) {
		t.Fatalf("export: %+v", s.Links)
	}
	s.Links[0].Held = ns(-time.Second)
	s.Links[0].Answers = []memory.AnswerState{
		{Tag: 5, Expires: ns(-time.Second), IDs: seq(1, 3)},
		{Tag: 5, Expires: ns(time.Minute), IDs: seq(1, store.MaxFanoutLimit+1)},
		{Tag: 0, Expires: ns(time.Minute), IDs: seq(1, 3)},
	}
	st := memory.New(memory.Options{SweepEvery: -1, Shards: 1, HashKey: src.HashKey()})
	if r := st.Import(t0, &s); r.Links != 1 || r.Dropped != 0 {
		t.Fatalf("import %+v", r)
	}
	// Kept, the answer past the bound would let 1-5 pass (opened
	// already); the ended hold would cap them all.
	if got := opens(t, st, t0, "acct", 1, 2, 3, 4); !slices.Equal(got, []bool{false, false, false, true}) {
		t.Fatalf("capped %v, want answer 5 counted afresh", got)
	}
}
