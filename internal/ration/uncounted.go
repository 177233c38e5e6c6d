package ration

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/store"
)

// Uncounted is st seen by a decision that must count nothing against a
// budget: an answer about a canary, which has to be masked or refused
// exactly when a real profile's would be (else an account past its budget
// tells canaries apart by what comes back unmasked), but must never count
// against a budget nor be remembered as shown (package canary's rule).
//
// Spend asks st for each budget's count with no subjects (st adds
// nothing) and answers every subject Allowed while that count is under
// the limit: what a subject not counted before gets. Link does nothing.
// Linked is st's: a canary shown to the identity in a list was linked
// there as the list's real ids were (LinkCanaries), so its look-up has
// the provenance a real one shown the same way has, and one never shown
// is unreferenced as a real one is (the unreferenced rule's budget is
// then read, not spent). The fan-out cap counts the open, as a real
// one's (the lead's decision: the fan-out state is no distinct-subject
// budget, and a canary that never counts there is told apart past the
// cap).
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

func (u uncounted) Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	return u.st.Linked(ctx, now, key, ids, fan, dst)
}

// LinkCanaries remembers in the identity's link memory canary ids an
// answer showed that Decide did not link: the canaries the seeders
// inserted into a real answer (inspect.Result.InsertedLinks), or the ids
// a canary's own list shows (its followers, following, posts' authors:
// canaries, answered through an Uncounted rationer whose Link does
// nothing). They are linked with the provenance and answer tag Decide
// links an answer's ids with, so a later look-up of one is decided as a
// look-up of a real record shown the same way (unreferenced rule,
// provenance budgets, the fan-out cap's answer). Made only by answers
// that carry canaries. Nothing happens when the unreferenced rule does
// not apply to the identity, as in Decide.
func (r *Rationer) LinkCanaries(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, ids [][]byte) error {
	u := r.unref
	if u == nil || len(ids) == 0 || route.Route == nil {
		return nil
	}
	v := id.Value(u.facet)
	if v == "" || u.ex.has(id) {
		return nil
	}
	subs := make([]uint64, len(ids))
	for i, x := range ids {
		subs[i] = Subject(x)
	}
	var kb store.KeyBuf
	shown := storeProvenance(route.Shown(id.Account))
	if err := r.st.Link(ctx, now, u.key(&kb, u.prefix, v, id), subs, shown, store.AnswerTag(req.ID, req.Path), u.cfg.TTL); err != nil {
		r.met.storeErrs.Inc()
		return fmt.Errorf("ration: link inserted ids: %w", err)
	}
	return nil
}
