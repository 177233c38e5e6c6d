package ration

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// ReadOnly is st seen by a decision that must count nothing: an answer
// about a canary, which has to be masked or refused exactly when a real
// profile would be (else an exhausted account tells canaries apart by
// what comes back unmasked), but must never count against a budget nor
// be remembered as shown (package canary's rule).
//
// Spend asks st for each budget's count with no subjects (st adds
// nothing) and answers every subject Allowed while that count is under
// the limit: exactly what a subject never counted before gets. Link does
// nothing. Linked reports provenances without the fan-out cap counting
// an open (fan's Capped is left all false).
func ReadOnly(st Store) Store { return readOnly{st} }

type readOnly struct{ st Store }

func (r readOnly) Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	ask := make([]store.SpendRequest, len(reqs))
	for i, q := range reqs {
		q.Subjects = nil
		ask[i] = q
	}
	got, err := r.st.Spend(ctx, now, ask)
	if err != nil {
		return nil, fmt.Errorf("read-only spend: %w", err)
	}
	if len(got) != len(reqs) {
		return nil, fmt.Errorf("read-only spend: %d results for %d budgets", len(got), len(reqs))
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

func (readOnly) Link(context.Context, time.Time, string, []uint64, store.Provenance, uint32, time.Duration) error {
	return nil
}

func (r readOnly) Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	if fan != nil {
		fan.Reset(len(ids))
	}
	return r.st.Linked(ctx, now, key, ids, nil, dst)
}
