package trace

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// TestName: every identity served at least the minimum of the copy's
// subjects is named, most first, flagged when accused; none below it.
func TestName(t *testing.T) {
	span := func(lo, hi uint32) *roaring.Bitmap {
		b := roaring.New()
		b.AddRange(uint64(lo), uint64(hi))
		return b
	}
	served := map[identKey]*roaring.Bitmap{
		{identify.FacetAccount, "big"}:     span(0, 900),
		{identify.FacetAccount, "edge"}:    span(100, 300), // exactly 200
		{identify.FacetAccount, "small"}:   span(0, 199),
		{identify.FacetNet, "10.0.0.0/24"}: span(500, 1000),
	}
	accused := map[identKey]bool{{identify.FacetAccount, "big"}: true}
	got, total := name(served, accused, 1000, 200)
	if total != 3 || len(got) != 3 {
		t.Fatalf("named %d (total %d), want 3: %+v", len(got), total, got)
	}
	want := []Named{
		{"account", "big", 900, 0.9, true},
		{"net", "10.0.0.0/24", 500, 0.5, false},
		{"account", "edge", 200, 0.2, false},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("named[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, total := name(served, accused, 1000, 1000); len(got) != 0 || total != 0 {
		t.Errorf("min 1000 named %+v", got)
	}
}

// entries is a ledger in memory for ReportEntries.
type entries []*ledger.Entry

func (es entries) Each(fn func(*ledger.Entry) bool) {
	for _, e := range es {
		if !fn(e) {
			return
		}
	}
}

// TestContentServesItsAuthors: the people a posts answer served are its
// authors, not its records, whose ids are posts' (the lab's post 500 is
// profile 5's first, not profile 500): a feed reader is not named for a
// copy of profiles whose ids its posts' ids happen to be, and is for the
// authors it was shown.
func TestContentServesItsAuthors(t *testing.T) {
	var copyOf strings.Builder
	for id := 500; id < 800; id++ {
		fmt.Fprintf(&copyOf, "{\"id\":\"%d\"}\n", id)
	}
	tr := New(nil, 2)
	if _, err := tr.Read(strings.NewReader(copyOf.String()), nil); err != nil {
		t.Fatal(err)
	}
	ident := func(acct string) (id [ledger.NumFacets]string) {
		id[identify.FacetAccount-1] = acct
		return id
	}
	var led entries
	for k := 500; k < 800; k++ {
		led = append(led,
			// reader: post k of author 5-7 (ids 500-799 are posts here)
			&ledger.Entry{Route: "GET /v1/feed", Status: 200, Identity: ident("reader"),
				Records: []ledger.Record{{ID: strconv.Itoa(k)}}, Authors: []string{strconv.Itoa(k / 100)}},
			// taker: profile k
			&ledger.Entry{Route: "GET /v1/users/{id}", Status: 200, Identity: ident("taker"),
				Records: []ledger.Record{{ID: strconv.Itoa(k)}}},
			// fan: a post by author k
			&ledger.Entry{Route: "GET /v1/feed", Status: 200, Identity: ident("fan"),
				Records: []ledger.Record{{ID: strconv.Itoa(k*100 + 3)}}, Authors: []string{strconv.Itoa(k)}})
	}
	rep := tr.ReportEntries(led, 0)
	var named []string
	for _, n := range rep.Named {
		named = append(named, fmt.Sprintf("%s:%d", n.Value, n.Subjects))
	}
	if got := strings.Join(named, " "); got != "fan:300 taker:300" {
		t.Errorf("named %q, want fan:300 taker:300 (not the reader of posts 500-799)", got)
	}
}
