package audience

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/reach"
)

// Query is one audience question.
type Query struct {
	Accounts []string
	Overlap  []string // a second set of accounts
	Dose     bool
	Ledger   Ledger        // nil: no split of reach
	Window   ledger.Window // of the reach split
}

// Ledger is a ledger as the reach split reads it: Reached calls fn with
// each identity (by facet by) the authors' content reached in win, once
// each, anonymous viewers left out. A directory is one (Dir), and so is a
// fleet's ledger in ClickHouse (its Client).
type Ledger interface {
	Reached(ctx context.Context, win ledger.Window, authors []string, by identify.Facet, fn func(string)) error
}

// Dir is the ledger directory dir as the reach split reads it, its
// readers opened with opts (WithWarnings: the command says on stderr
// which derived file it passed over).
func Dir(dir string, opts ...ledger.ReaderOption) Ledger { return dirWith{dir, opts} }

type dirWith struct {
	dir  string
	opts []ledger.ReaderOption
}

// Reached reads the authors' viewers in the directory (Reader.Viewers)
// and names each once.
func (d dirWith) Reached(_ context.Context, win ledger.Window, authors []string, by identify.Facet, fn func(string)) error {
	r, err := ledger.OpenReader(d.dir, win, d.opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	views, _, err := r.Viewers(authors, by)
	if err != nil {
		return err
	}
	for it := ledger.Union(views).Iterator(); it.HasNext(); {
		fn(r.IdentityName(it.Next()))
	}
	return nil
}

// Result is the exact answer; its JSON is --json's.
type Result struct {
	Audience int            `json:"audience"` // distinct people following any of the accounts
	Exact    bool           `json:"exact"`
	Accounts int            `json:"accounts"`
	Lists    []ListCount    `json:"lists"` // each account's follower list, as paged
	Pages    int            `json:"pages"`
	Requests int            `json:"requests"`
	Dose     []reach.Dose   `json:"dose,omitempty"`
	Overlap  *reach.Overlap `json:"overlap,omitempty"`
	Reach    *Split         `json:"reach,omitempty"`
}

// ListCount is one account's follower list length.
type ListCount struct {
	Account   string `json:"account"`
	Followers int    `json:"followers"`
}

// Split is the reach of the accounts, as authors, in the ledger, split
// into people who follow any of them and people who do not.
type Split struct {
	Reach        int        `json:"reach"`
	Followers    int        `json:"followers"`
	NonFollowers int        `json:"non_followers"`
	From         *time.Time `json:"from"`
	To           *time.Time `json:"to"`
}

// person is what one person is to the question.
type person struct {
	k       int  // how many of the accounts they follow
	inB     bool // whether they follow one of the other set
	reached bool // whether the accounts' content reached them (ledger)
}

// people pages the lists and reads the ledger: everyone the question
// counts, by account id.
func people(ctx context.Context, l *Lists, q Query, res *Result) (map[string]*person, error) {
	if len(q.Accounts) == 0 {
		return nil, errNoAccounts
	}
	ps := map[string]*person{}
	get := func(id string) *person {
		p := ps[id]
		if p == nil {
			p = &person{}
			ps[id] = p
		}
		return p
	}
	page := func(acct string, mark func(*person)) error {
		seen := map[string]bool{} // a list that repeats an id counts it once
		n, err := l.Followers(ctx, acct, func(id string) {
			if !seen[id] {
				seen[id] = true
				mark(get(id))
			}
		})
		res.Pages += n
		res.Lists = append(res.Lists, ListCount{Account: acct, Followers: len(seen)})
		return err
	}
	// The ledger is read first: one it cannot read (damaged, cut, not a
	// ledger) fails the question before the lists are paged, which at a
	// bounded rate may take an hour, rather than after.
	if q.Ledger != nil {
		if err := q.Ledger.Reached(ctx, q.Window, q.Accounts, identify.FacetAccount, func(id string) { get(id).reached = true }); err != nil {
			return nil, fmt.Errorf("reach split: %w", err)
		}
	}
	// Each account's list is paged once, however often and in whichever
	// sets it is named: an account in both --accounts and --overlap
	// counts in both sets from the one paging.
	inA, inB := map[string]bool{}, map[string]bool{}
	var order []string
	for _, set := range []struct {
		ids []string
		in  map[string]bool
	}{{q.Accounts, inA}, {q.Overlap, inB}} {
		for _, a := range set.ids {
			if !inA[a] && !inB[a] {
				order = append(order, a)
			}
			set.in[a] = true
		}
	}
	for _, acct := range order {
		a, b := inA[acct], inB[acct]
		mark := func(p *person) {
			if a {
				p.k++
			}
			if b {
				p.inB = true
			}
		}
		if err := page(acct, mark); err != nil {
			return nil, err
		}
	}
	res.Requests = l.Requests
	return ps, nil
}

// Run answers q exactly.
func Run(ctx context.Context, l *Lists, q Query) (*Result, error) {
	res := &Result{Exact: true, Accounts: len(q.Accounts)}
	ps, err := people(ctx, l, q, res)
	if err != nil {
		return nil, err
	}
	hist := map[int]int{}
	var o reach.Overlap
	var s Split
	for _, p := range ps {
		if p.k > 0 {
			res.Audience++
			hist[p.k]++
		}
		if p.inB {
			o.B++
		}
		if p.k > 0 && p.inB {
			o.Both++
		}
		if p.k > 0 || p.inB {
			o.Either++
		}
		if p.reached {
			s.Reach++
			if p.k > 0 {
				s.Followers++
			} else {
				s.NonFollowers++
			}
		}
	}
	if q.Dose {
		atLeast := make([]int, len(q.Accounts)+2)
		for k := len(q.Accounts); k >= 1; k-- {
			atLeast[k] = atLeast[k+1] + hist[k]
		}
		res.Dose = reach.DoseOf(len(q.Accounts), func(k int) int { return atLeast[k] })
	}
	if q.Overlap != nil {
		o.A = res.Audience
		res.Overlap = &o
	}
	if q.Ledger != nil {
		s.From, s.To = times(q.Window)
		res.Reach = &s
	}
	return res, nil
}

func times(w ledger.Window) (*time.Time, *time.Time) {
	var f, t *time.Time
	if !w.From.IsZero() {
		f = &w.From
	}
	if !w.To.IsZero() {
		t = &w.To
	}
	return f, t
}

// PrivateResult is a private answer: every figure noisy with its
// interval; neither the per-account list lengths nor the pages read
// (both move with one person's follows).
type PrivateResult struct {
	Audience int64                 `json:"audience"`
	Interval privacy.Interval      `json:"interval"`
	Exact    bool                  `json:"exact"`
	Accounts int                   `json:"accounts"`
	Dose     []reach.PrivateDose   `json:"dose,omitempty"`
	Overlap  *reach.PrivateOverlap `json:"overlap,omitempty"`
	Reach    *PrivateSplit         `json:"reach,omitempty"`
	Privacy  privacy.Note          `json:"privacy"`
	Budget   privacy.Account       `json:"budget"`
	// RemainingBudget repeats Budget.Remaining (zCDP rho) at the top.
	RemainingBudget string `json:"remaining_budget"`
}

// PrivateSplit is Split, noisy.
type PrivateSplit struct {
	Reach                int64            `json:"reach"`
	ReachInterval        privacy.Interval `json:"reach_interval"`
	Followers            int64            `json:"followers"`
	FollowersInterval    privacy.Interval `json:"followers_interval"`
	NonFollowers         int64            `json:"non_followers"`
	NonFollowersInterval privacy.Interval `json:"non_followers_interval"`
	From                 *time.Time       `json:"from"`
	To                   *time.Time       `json:"to"`
}

// RunPrivate answers q with differential privacy: one person sits in one
// cell (k, inB, reached), k from 0 to the number of accounts with --dose
// (else 0 or 1), inB with --overlap, reached with the ledger. A repeat
// neither pages nor reads the ledger.
func RunPrivate(ctx context.Context, l *Lists, q Query, p privacy.Request) (*PrivateResult, error) {
	kMax, nB, nR := 1, 1, 1
	if q.Dose {
		kMax = len(q.Accounts)
	}
	if q.Overlap != nil {
		nB = 2
	}
	if q.Ledger != nil {
		nR = 2
	}
	idx := func(k, b, r int) int { return (k*nB+b)*nR + r }
	of := func(i int) (k, b, r int) { return i / (nB * nR), (i / nR) % nB, i % nR }
	size := (kMax + 1) * nB * nR
	valid := func(i int) bool { k, b, r := of(i); return k+b+r > 0 }
	res, acct, err := privacy.Answer(ctx, p, func(src privacy.Source) (*PrivateResult, error) {
		res := &PrivateResult{Accounts: len(q.Accounts)}
		var counts Result
		ps, err := people(ctx, l, q, &counts)
		if err != nil {
			return nil, err
		}
		exact := make([]int64, size)
		for _, pp := range ps {
			b, r := 0, 0
			if pp.inB {
				b = 1
			}
			if pp.reached {
				r = 1
			}
			exact[idx(min(pp.k, kMax), b, r)]++
		}
		h, err := p.Mechanism.Release(src, exact)
		if err != nil {
			return nil, err
		}
		sel := func(f func(k, b, r int) bool) func(int) bool {
			return func(i int) bool { k, b, r := of(i); return valid(i) && f(k, b, r) }
		}
		// The guarantee names what was counted: the lists, and the
		// ledger only when the reach was split on it.
		data := privacy.Data{Name: "the follower lists", Of: "every follow"}
		if q.Ledger != nil {
			data = privacy.Data{Name: "the follower lists and the ledger", Of: "every follow and every Access"}
		}
		res.Privacy = h.Note(identify.FacetAccount.String(), data)
		res.Privacy.Cells = size - 1 // all but the empty signature (0, 0, 0)
		res.Audience, res.Interval = h.Figure(sel(func(k, _, _ int) bool { return k >= 1 }))
		res.Dose, res.Overlap = reach.PrivateDoseOverlap(h, func(i int) (k, inB int, ok bool) {
			k, inB, _ = of(i)
			return k, inB, valid(i)
		}, kMax, q.Dose, q.Overlap != nil)
		if q.Ledger != nil {
			s := &PrivateSplit{}
			s.From, s.To = times(q.Window)
			s.Reach, s.ReachInterval = h.Figure(sel(func(_, _, r int) bool { return r == 1 }))
			s.Followers, s.FollowersInterval = h.Figure(sel(func(k, _, r int) bool { return r == 1 && k >= 1 }))
			s.NonFollowers, s.NonFollowersInterval = h.Figure(sel(func(k, _, r int) bool { return r == 1 && k == 0 }))
			res.Reach = s
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	res.Budget, res.RemainingBudget = acct, acct.Remaining
	return res, nil
}
