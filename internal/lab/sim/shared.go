package sim

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scenarios added for issue 22: real users behind addresses they share
// with harvesters, a search-driven harvester, a harvester that retries
// refusals at once, aged hijacked accounts opening random ids, sign-up
// cohorts, and real searchers.
const (
	sharedBlock    = 23 // the shared addresses: nat-users live here, and two harvesters send from here
	natHarvBlock   = 24
	searchHarvBlk  = 25
	hijackedBlock  = 26
	cohortBlock    = 27
	searchersBlock = 28
	sharedAddrs    = 5 // how many shared addresses there are
)

// sharedAddr is the i-th shared address (127.23.0.1 ...).
func sharedAddr(i int) netip.Addr { return addr(sharedBlock, i%sharedAddrs, 1) }

// buildNatUsers: real users, all behind the shared addresses.
func buildNatUsers(ps *params, e *env) (runner, error) {
	s := &usersScn{
		count:   ps.int("count", 50, 1, 10_000),
		addrs:   sharedAddrs,
		heavy:   ps.float("heavy", 0.02, 0, 1),
		signups: ps.float("signups", defaultSignups, 0, 1),
		think:   ps.dur("think", 3*time.Second),
		gap:     ps.dur("session-gap", 20*time.Second),
		shared:  true,
		block:   sharedBlock,
	}
	if err := ps.check(); err != nil {
		return runner{}, err
	}
	return runner{users: s.count, run: s.run}, nil
}

// retryHarvester sends from the shared addresses with a few aged accounts
// (the lab platform answers no anonymous look-up), opening random ids and walking follower lists; every
// refused request is sent again at once (up to retries times), so the
// addresses' allowances stay empty for as long as it runs.
type retryHarvester struct {
	accounts, workers, retries int
	rate                       float64
}

func buildNatHarvester(ps *params, e *env) (runner, error) {
	s := &retryHarvester{
		accounts: ps.int("accounts", 4, 1, 1000),
		workers:  ps.int("workers", 8, 1, 256),
		retries:  ps.int("retries", 20, 0, 1000),
		rate:     ps.float("rate", 200, 0, 1e6),
	}
	return runner{run: s.run}, ps.check()
}

func (s *retryHarvester) run(ctx context.Context, e *env, p *pop) {
	ids := e.agedHarvesters(e.rngFor(natHarvBlock, 0), s.accounts, sharedAddr, func(int) string { return harvesterUA })
	p.accounts.Store(int64(s.accounts))
	pc := newPacer(s.rate)
	e.workers(s.workers, natHarvBlock, func(rng *rand.Rand) {
		for pc.wait(ctx) {
			id := ids[rng.IntN(len(ids))]
			path := "/v1/users/" + strconv.Itoa(1+rng.IntN(e.profiles))
			if rng.IntN(4) == 0 {
				path += "/followers?limit=50"
			}
			for t := 0; t <= s.retries; t++ {
				a, err := e.do(ctx, p, id, -1, "GET", path)
				if err == errStop {
					return
				}
				if err != nil || !a.refused {
					if a != nil && a.status == 200 && !strings.Contains(path, "?") {
						e.scoreProfile(p, a, -1)
					}
					break
				}
			}
		}
	})
}

// searchHarvester: aged accounts behind the shared addresses find people
// through search and open every hit by username.
type searchHarvester struct {
	accounts, workers int
	rate              float64
}

func buildSearchHarvester(ps *params, e *env) (runner, error) {
	s := &searchHarvester{
		accounts: ps.int("accounts", 20, 1, 10_000),
		workers:  ps.int("workers", 8, 1, 256),
		rate:     ps.float("rate", 100, 0, 1e6),
	}
	return runner{run: s.run}, ps.check()
}

func (s *searchHarvester) run(ctx context.Context, e *env, p *pop) {
	ids := e.agedHarvesters(e.rngFor(searchHarvBlk, 0), s.accounts, sharedAddr, userAgentAt)
	p.accounts.Store(int64(len(ids)))
	p.pace = newPacer(s.rate)
	e.workers(s.workers, searchHarvBlk, func(rng *rand.Rand) {
		for ctx.Err() == nil {
			id := ids[rng.IntN(len(ids))]
			q := string([]byte{byte('a' + rng.IntN(26)), byte('a' + rng.IntN(26))})
			page, err := e.userPage(ctx, p, id, -1, "/v1/search?limit=50&q="+q)
			if err == errStop {
				return
			}
			if page == nil {
				continue
			}
			for _, u := range page.Users {
				if _, err := e.openProfile(ctx, p, id, -1, "/v1/users/by-username/"+url.PathEscape(u.Username)); err == errStop {
					return
				}
			}
		}
	})
}

// hijacked: aged accounts, each on an address in a /24 of its own
// (residential proxies), open random ids and read their feed now and then.
type hijackedScn struct {
	accounts, workers int
	rate              float64
}

func buildHijacked(ps *params, e *env) (runner, error) {
	s := &hijackedScn{
		accounts: ps.int("accounts", 60, 1, 256),
		workers:  ps.int("workers", 8, 1, 256),
		rate:     ps.float("rate", 100, 0, 1e6),
	}
	return runner{run: s.run}, ps.check()
}

func (s *hijackedScn) run(ctx context.Context, e *env, p *pop) {
	own := func(i int) netip.Addr { return addr(hijackedBlock, i, s.accounts) }
	ids := e.agedHarvesters(e.rngFor(hijackedBlock, 0), s.accounts, own, userAgentAt)
	p.accounts.Store(int64(len(ids)))
	p.pace = newPacer(s.rate)
	e.workers(s.workers, hijackedBlock, func(rng *rand.Rand) {
		for ctx.Err() == nil {
			id := ids[rng.IntN(len(ids))]
			var err error
			if rng.IntN(10) == 0 {
				_, err = e.postPage(ctx, p, id, -1, "/v1/feed?limit=20")
			} else {
				_, err = e.openProfile(ctx, p, id, -1, "/v1/users/"+strconv.Itoa(1+rng.IntN(e.profiles)))
			}
			if err == errStop {
				return
			}
		}
	})
}

// cohort: accounts signed up close together from one /24 with one client
// build walk follower lists and open whom they see.
type cohortScn struct {
	accounts, workers int
	rate              float64
}

func buildCohort(ps *params, e *env) (runner, error) {
	s := &cohortScn{
		accounts: ps.int("accounts", 40, 1, 254),
		workers:  ps.int("workers", 8, 1, 256),
		rate:     ps.float("rate", 100, 0, 1e6),
	}
	return runner{run: s.run}, ps.check()
}

func (s *cohortScn) run(ctx context.Context, e *env, p *pop) {
	bots := signupAll(ctx, e, p, s.accounts, s.workers, func(i int) *ident {
		return &ident{src: addr(cohortBlock, i, 1), keep: true, ua: fleetUA}
	})
	if len(bots) == 0 {
		return
	}
	p.accounts.Store(int64(len(bots)))
	p.pace = newPacer(s.rate)
	st := &fleetState{listed: make([]bool, e.profiles), opened: make([]bool, e.profiles), other: map[string]bool{}}
	for _, b := range bots {
		st.push("/v1/users/" + url.PathEscape(b.account) + "/following?limit=50")
	}
	fs := &fleetScn{}
	e.workers(s.workers, cohortBlock, func(rng *rand.Rand) {
		for ctx.Err() == nil {
			bot := bots[rng.IntN(len(bots))]
			path, ok := st.pop()
			if !ok {
				path = "/v1/users/" + strconv.Itoa(1+rng.IntN(e.profiles)) + "/followers?limit=50"
			}
			if fs.walk(ctx, e, p, st, bot, path) == errStop {
				return
			}
		}
	})
}

// searchersScn: real people on their own addresses who search a name and
// open one or two of the hits, then come back later.
type searchersScn struct {
	count      int
	think, gap time.Duration
}

func buildSearchers(ps *params, e *env) (runner, error) {
	s := &searchersScn{count: ps.int("count", 30, 1, 10_000), think: ps.dur("think", 4*time.Second), gap: ps.dur("session-gap", 15*time.Second)}
	if err := ps.check(); err != nil {
		return runner{}, err
	}
	return runner{users: s.count, run: s.run}, nil
}

func (s *searchersScn) run(ctx context.Context, e *env, p *pop) {
	rng := e.rngFor(searchersBlock, 0)
	accs := e.distinctIDs(rng, s.count)
	var wg sync.WaitGroup
	for u, acc := range accs {
		id := &ident{src: addr(searchersBlock, u, 256), keep: true, token: e.agedToken(rng, acc), ua: userAgents[rng.IntN(len(userAgents))]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := e.rngFor(searchersBlock, 1+u)
			for sleep(ctx, expDur(rng, s.gap)) {
				if s.session(ctx, e, p, id, u, rng) == errStop {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func (s *searchersScn) session(ctx context.Context, e *env, p *pop, id *ident, u int, rng *rand.Rand) error {
	q := string([]byte{byte('a' + rng.IntN(26)), byte('a' + rng.IntN(26))})
	page, err := e.userPage(ctx, p, id, u, "/v1/search?limit=20&q="+q)
	if err != nil || page == nil || len(page.Users) == 0 {
		return err
	}
	open := func(n int) error {
		for range n {
			if !sleep(ctx, expDur(rng, s.think)) {
				return errStop
			}
			hit := page.Users[rng.IntN(len(page.Users))]
			path := "/v1/users/" + url.PathEscape(hit.ID)
			if rng.IntN(2) == 0 {
				path = "/v1/users/by-username/" + url.PathEscape(hit.Username)
			}
			if _, err := e.openProfile(ctx, p, id, u, path); err == errStop {
				return err
			}
		}
		return nil
	}
	if err := open(1 + rng.IntN(2)); err != nil {
		return err
	}
	// Sometimes back to the same result page (the browser asks it again)
	// for one more: up to three people opened from one answer.
	if rng.IntN(3) == 0 {
		if !sleep(ctx, expDur(rng, s.think)) {
			return errStop
		}
		again, err := e.userPage(ctx, p, id, u, "/v1/search?limit=20&q="+q)
		if err != nil || again == nil || len(again.Users) == 0 {
			return err
		}
		page = again
		return open(1)
	}
	return nil
}
