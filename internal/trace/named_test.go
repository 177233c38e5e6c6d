package trace

import (
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
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
