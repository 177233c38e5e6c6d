package ration

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// Uncounted is st seen by a decision that must count nothing: an answer
// about a canary, which has to be masked or refused exactly when a real
// profile's would be (else an account past its budget tells canaries
// apart by what comes back unmasked), but must never count against a
// budget nor be remembered (package canary's rule).
//
// Spend asks st for each budget's count with no subjects (st adds
// nothing) and answers every subject Allowed while that count is under
// the limit: what a subject not counted before gets. Link does nothing.
// Linked answers List for every id without asking st, and caps nothing
// (fan's Capped all false): a canary is shown in lists (the seeder's
// insertions) but never linked, so st would call every look-up of one
// unreferenced and the unreferenced rule would mask canaries where a real
// profile taken from the same list is served. What this does not match
// is a real look-up of an id never shown to the identity, or one past the
// fan-out cap: there a real profile may be masked and a canary is not.
func Uncounted(st Store) Store { return uncounted{st} }

type uncounted struct{ st Store }

func (u uncounted) Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	ask := make([]store.SpendRequest, len(reqs))
	for i, q := range reqs {
		q.Subjects = nil
		ask[i] = q
	}
	got, err := u.st.Spend(ctx, now, ask)
	if err != nil {
		return nil, fmt.Errorf("uncounted spend: %w", err)
	}
	if len(got) != len(reqs) {
		return nil, fmt.Errorf("uncounted spend: %d results for %d budgets", len(got), len(reqs))
	}
	out := make([]store.SpendResult, len(reqs))
	for i, q := range reqs {
		a := make([]bool, len(q.Subjects))
		for j := range a {
			a[j] = got[i].Count < q.Limit
		}
		out[i] = store.SpendResult{Allowed: a, Count: got[i].Count}
	}
	return out, nil
}

func (uncounted) Link(context.Context, time.Time, string, []uint64, store.Provenance, uint32, time.Duration) error {
	return nil
}

func (uncounted) Linked(_ context.Context, _ time.Time, _ string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	if fan != nil {
		fan.Reset(len(ids))
	}
	if cap(dst) < len(ids) {
		dst = make([]store.Provenance, len(ids))
	}
	dst = dst[:len(ids)]
	for i := range dst {
		dst[i] = store.List
	}
	return dst, nil
}
