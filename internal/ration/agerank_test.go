package ration

import (
	"slices"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// The tier TierAt tells from an AgeRank is the one budget.tier applied,
// at each bound and either side of it, for every budget of a config.
func TestAgeRankTellsTheTier(t *testing.T) {
	const day = 24 * time.Hour
	budgets := []BudgetConfig{
		{Name: "a", Limit: 200, AccountAge: []AgeTier{{YoungerThan: 30 * day, Limit: 50}, {YoungerThan: day, Limit: 10}}},
		{Name: "b", Limit: 5, AccountAge: []AgeTier{{YoungerThan: 7 * day, Limit: 8}}}, // a tier above the limit: min
		{Name: "c", Limit: 3},
	}
	bounds := AgeBounds(budgets)
	now := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	ids := []identify.Identity{{}, {Account: "1"}, {Account: "1", AccountAgeUnknown: true}} // anonymous; no created, oldest; youngest
	for _, age := range []time.Duration{0, day - 1, day, day + 1, 7*day - 1, 7 * day, 30*day - 1, 30 * day, 400 * day} {
		ids = append(ids, identify.Identity{Account: "1", AccountCreated: now.Add(-age)})
	}
	for _, id := range ids {
		rank := AgeRank(bounds, &id, now)
		for _, bc := range budgets {
			b := &budget{cfg: bc, tiers: slices.Clone(bc.AccountAge)}
			slices.SortFunc(b.tiers, func(a, b AgeTier) int { return int(a.YoungerThan - b.YoungerThan) })
			want, _ := b.tier(&id, now)
			tier, applies, known := TierAt(bc, bounds, rank)
			got := bc.Limit
			if applies {
				got = min(tier.Limit, bc.Limit)
			}
			if len(bc.AccountAge) > 0 && !known || got != want {
				t.Errorf("account %+v, budget %s: rank %d gives %d (known %v), the budget applied %d", id, bc.Name, rank, got, known, want)
			}
		}
	}
	if AgeRank(nil, &identify.Identity{Account: "1"}, now) != 0 {
		t.Error("a rank with no bounds")
	}
	if _, _, known := TierAt(budgets[0], bounds, 0); known {
		t.Error("rank 0 (not recorded) told a tier")
	}
}
