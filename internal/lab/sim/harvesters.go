package sim

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	naiveBlock     = 18
	slowBlock      = 19
	ipRotBlock     = 20
	accRotBlock    = 21
	fleetBlock     = 22
	harvesterUA    = "python-requests/2.31.0"
	fleetUA        = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	maxSignupTries = 3
)

// enumerate runs workers that fetch /v1/users/1, 2, ... N in order, each
// request as pick(j) for the j-th request, paced by pc.
func enumerate(ctx context.Context, e *env, p *pop, workers, start int, pc *pacer, pick func(j int64) *ident) {
	var next atomic.Int64
	next.Store(int64(start) - 1)
	var j atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pc.wait(ctx) {
				n := next.Add(1)
				if n > int64(e.profiles) {
					return
				}
				if _, err := e.openProfile(ctx, p, pick(j.Add(1)-1), -1, "/v1/users/"+strconv.FormatInt(n, 10)); err == errStop {
					return
				}
			}
		}()
	}
	wg.Wait()
}

type naiveScn struct {
	workers, account int
	rate             float64
}

func buildNaive(ps *params, e *env) (runner, error) {
	s := &naiveScn{workers: ps.int("workers", 4, 1, 1024), account: ps.int("account", 0, 0, 100_000_000),
		rate: ps.float("rate", 100, 0, 1e6)}
	return runner{run: s.run}, ps.check()
}

func (s *naiveScn) run(ctx context.Context, e *env, p *pop) {
	rng := e.rngFor(naiveBlock, 0)
	acc := s.account
	if acc == 0 {
		acc = e.harvesterIDs(rng, 1)[0]
	}
	id := &ident{src: addr(naiveBlock, 0, 1), keep: true, token: e.agedToken(rng, acc), ua: harvesterUA}
	p.accounts.Store(1)
	enumerate(ctx, e, p, s.workers, 1, newPacer(s.rate), func(int64) *ident { return id })
}

type slowScn struct {
	rate  float64
	start int
}

func buildSlow(ps *params, e *env) (runner, error) {
	s := &slowScn{rate: ps.float("rate", 8, 0.001, 100_000), start: ps.int("start", 1, 1, 100_000_000)}
	return runner{run: s.run}, ps.check()
}

func (s *slowScn) run(ctx context.Context, e *env, p *pop) {
	rng := e.rngFor(slowBlock, 0)
	id := &ident{src: addr(slowBlock, 0, 1), keep: true, token: e.agedToken(rng, e.harvesterIDs(rng, 1)[0]), ua: harvesterUA}
	p.accounts.Store(1)
	enumerate(ctx, e, p, 2, s.start, newPacer(s.rate), func(int64) *ident { return id })
}

type ipRotScn struct {
	addrs, accounts, workers int
	rate                     float64
}

func buildIPRotation(ps *params, e *env) (runner, error) {
	s := &ipRotScn{
		rate:     ps.float("rate", 250, 0, 1e6),
		addrs:    ps.int("addrs", 4096, 1, 65_000),
		accounts: ps.int("accounts", 4, 1, 100_000),
		workers:  ps.int("workers", 16, 1, 1024),
	}
	return runner{run: s.run}, ps.check()
}

func (s *ipRotScn) run(ctx context.Context, e *env, p *pop) {
	rng := e.rngFor(ipRotBlock, 0)
	var tokens []string
	for _, a := range e.harvesterIDs(rng, s.accounts) {
		tokens = append(tokens, e.agedToken(rng, a))
	}
	p.accounts.Store(int64(len(tokens)))
	ids := make([]*ident, s.addrs)
	for i := range ids {
		ids[i] = &ident{src: addr(ipRotBlock, i, 256), token: tokens[i%len(tokens)], ua: harvesterUA}
	}
	enumerate(ctx, e, p, s.workers, 1, newPacer(s.rate), func(j int64) *ident { return ids[j%int64(len(ids))] })
}

// signupAll signs up to n accounts, each from the source src(i), with
// workers in parallel; refused sign-ups are retried a few times.
func signupAll(ctx context.Context, e *env, p *pop, n, workers int, src func(i int) *ident) []*ident {
	out := make([]*ident, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				base := src(i)
				for t := 0; t < maxSignupTries; t++ {
					acc, tok, err := e.signup(ctx, p, base)
					if err == errStop {
						return
					}
					if tok != "" {
						id := *base
						id.token, id.account = tok, acc
						out[i] = &id
						break
					}
					if !sleep(ctx, 100*time.Millisecond) {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	var got []*ident
	for _, id := range out {
		if id != nil {
			got = append(got, id)
		}
	}
	return got
}

type accRotScn struct {
	accounts, addrs, workers int
	rate                     float64
}

func buildAccountRotation(ps *params, e *env) (runner, error) {
	s := &accRotScn{
		rate:     ps.float("rate", 250, 0, 1e6),
		accounts: ps.int("accounts", 300, 1, 100_000),
		addrs:    ps.int("addrs", 4, 1, 254),
		workers:  ps.int("workers", 16, 1, 1024),
	}
	return runner{run: s.run}, ps.check()
}

func (s *accRotScn) run(ctx context.Context, e *env, p *pop) {
	ids := signupAll(ctx, e, p, s.accounts, s.workers, func(i int) *ident {
		return &ident{src: addr(accRotBlock, i%s.addrs, 1), keep: true, ua: harvesterUA}
	})
	for len(ids) == 0 { // every sign-up refused: keep trying, slowly
		if !sleep(ctx, time.Second) {
			return
		}
		ids = signupAll(ctx, e, p, 1, 1, func(i int) *ident {
			return &ident{src: addr(accRotBlock, 0, 1), keep: true, ua: harvesterUA}
		})
	}
	p.accounts.Store(int64(len(ids)))
	enumerate(ctx, e, p, s.workers, 1, newPacer(s.rate), func(j int64) *ident { return ids[j%int64(len(ids))] })
}

type fleetScn struct {
	bots, nets, workers int
	accounts            string
	rate                float64
}

func buildFleet(ps *params, e *env) (runner, error) {
	s := &fleetScn{
		bots:     ps.int("bots", 200, 1, 60_000),
		nets:     ps.int("nets", 32, 1, 256),
		workers:  ps.int("workers", 16, 1, 1024),
		accounts: ps.str("accounts", "signup", "signup", "aged"),
		rate:     ps.float("rate", 250, 0, 1e6),
	}
	return runner{run: s.run}, ps.check()
}

// fleetState is what the fleet's bots share: a frontier of lists to walk
// and the ids already taken, so no look-up is wasted.
type fleetState struct {
	mu       sync.Mutex
	frontier []string // paths of list pages to fetch
	head     int
	listed   []bool // real profile index -> its followers list queued
	opened   []bool // real profile index -> opened
	other    map[string]bool
}

const fleetFrontierMax = 50_000

func (f *fleetState) push(path string) {
	f.mu.Lock()
	if len(f.frontier)-f.head < fleetFrontierMax {
		f.frontier = append(f.frontier, path)
	}
	f.mu.Unlock()
}

func (f *fleetState) pop() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.head == len(f.frontier) {
		return "", false
	}
	p := f.frontier[f.head]
	f.frontier[f.head] = ""
	f.head++
	if f.head > 4096 && f.head*2 > len(f.frontier) {
		f.frontier = append([]string(nil), f.frontier[f.head:]...)
		f.head = 0
	}
	return p, true
}

// claim marks id opened (or listed) and reports whether it was new.
func (f *fleetState) claim(e *env, id string, listed bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := f.opened
	if listed {
		set = f.listed
	}
	if i, ok := e.truth.real(id); ok {
		if set[i] {
			return false
		}
		set[i] = true
		return true
	}
	// Ids that are not real profiles (new accounts, anything a gateway
	// adds) are opened once, never walked.
	if listed || f.other[id] || len(f.other) >= 100_000 {
		return false
	}
	f.other[id] = true
	return true
}

func (s *fleetScn) run(ctx context.Context, e *env, p *pop) {
	var bots []*ident
	if s.accounts == "aged" {
		bots = e.agedHarvesters(e.rngFor(fleetBlock, 0), s.bots, func(i int) netip.Addr { return addr(fleetBlock, i, s.nets) }, func(int) string { return fleetUA })
	} else {
		// Each bot signs up from its own address.
		bots = signupAll(ctx, e, p, s.bots, s.workers, func(i int) *ident {
			return &ident{src: addr(fleetBlock, i, s.nets), keep: true, ua: fleetUA}
		})
	}
	if len(bots) == 0 {
		return
	}
	p.accounts.Store(int64(len(bots)))
	p.pace = newPacer(s.rate)
	st := &fleetState{listed: make([]bool, e.profiles), opened: make([]bool, e.profiles), other: map[string]bool{}}
	// Seeds: what each bot's own account follows, and name searches.
	for _, b := range bots {
		if b.account != "" {
			st.push("/v1/users/" + url.PathEscape(b.account) + "/following?limit=50")
		}
	}
	var turn atomic.Int64
	e.workers(s.workers, fleetBlock, func(rng *rand.Rand) {
		for ctx.Err() == nil {
			bot := bots[turn.Add(1)%int64(len(bots))]
			path, ok := st.pop()
			if !ok {
				// Nothing queued: search a two-letter name prefix.
				q := string([]byte{byte('a' + rng.IntN(26)), byte('a' + rng.IntN(26))})
				path = "/v1/search?limit=50&q=" + q
			}
			if s.walk(ctx, e, p, st, bot, path) == errStop {
				return
			}
		}
	})
}

// walk fetches one list page as bot, queues its next page and the
// followers lists of the people on it, and opens their profiles, all as
// the same bot, so every look-up follows a link it was shown.
func (s *fleetScn) walk(ctx context.Context, e *env, p *pop, st *fleetState, bot *ident, path string) error {
	page, err := e.userPage(ctx, p, bot, -1, path)
	if err != nil || page == nil {
		return err
	}
	if page.NextCursor != nil && *page.NextCursor != "" {
		base, _, _ := cutCursor(path)
		st.push(base + "&cursor=" + url.QueryEscape(*page.NextCursor))
	}
	for _, u := range page.Users {
		if u.FollowerCount > 0 && st.claim(e, u.ID, true) {
			st.push("/v1/users/" + url.PathEscape(u.ID) + "/followers?limit=50")
		}
	}
	for _, u := range page.Users {
		if !st.claim(e, u.ID, false) {
			continue
		}
		if _, err := e.openProfile(ctx, p, bot, -1, "/v1/users/"+url.PathEscape(u.ID)); err == errStop {
			return err
		}
	}
	return nil
}

// cutCursor splits a list path from its cursor parameter (always last).
func cutCursor(path string) (string, string, bool) {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '&' && len(path) > i+8 && path[i:i+8] == "&cursor=" {
			return path[:i], path[i+8:], true
		}
	}
	return path, "", false
}
