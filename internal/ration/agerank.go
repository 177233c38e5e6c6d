package ration

import (
	"slices"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// MaxAgeBounds is the most distinct account_age bounds an AgeRank tells
// apart: the ledger keeps a rank in 5 bits of an Access's flag byte
// (0: not known). With more, AgeRank is 0.
const MaxAgeBounds = 30

// AgeBounds are the distinct account_age bounds (younger_than) of
// budgets, ascending: what an AgeRank is counted against.
func AgeBounds(budgets []BudgetConfig) []time.Duration {
	var out []time.Duration
	for _, b := range budgets {
		for _, t := range b.AccountAge {
			out = append(out, t.YoungerThan)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// AgeRank is where id's account age at now stood among bounds (AgeBounds):
// 1 + how many of them it had reached, as the budgets decide tiers
// (budget.tier: a tier applies when the age is under its bound). An
// identity with no account age (none, or a token without created under
// missing_created: oldest) is past every bound: no tier applies. 0: not
// known (no bounds, or more than MaxAgeBounds).
func AgeRank(bounds []time.Duration, id *identify.Identity, now time.Time) uint8 {
	if len(bounds) == 0 || len(bounds) > MaxAgeBounds {
		return 0
	}
	age, ok := id.AccountAge(now)
	if !ok {
		return uint8(len(bounds)) + 1
	}
	n := 0
	for n < len(bounds) && age >= bounds[n] {
		n++
	}
	return uint8(n) + 1
}

// TierAt is the account_age tier of b that applied to an account of rank
// (AgeRank against bounds, the AgeBounds of the config b is one of),
// and whether one did; known is false when rank is 0 (not known) or out
// of bounds' range. The limit that applied is then min(tier's, b's), as
// budget.tier has it.
func TierAt(b BudgetConfig, bounds []time.Duration, rank uint8) (t AgeTier, applies, known bool) {
	if rank == 0 || int(rank) > len(bounds)+1 {
		return AgeTier{}, false, false
	}
	reached := int(rank) - 1 // bounds[:reached] were reached: the age is under every later one
	tiers := slices.Clone(b.AccountAge)
	slices.SortFunc(tiers, func(a, b AgeTier) int { return int(a.YoungerThan - b.YoungerThan) })
	for _, t := range tiers {
		if reached == len(bounds) || t.YoungerThan < bounds[reached] {
			continue // reached: the age is at least this bound
		}
		return t, true, true
	}
	return AgeTier{}, false, true
}
