package sim

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

type usersScn struct {
	count, addrs, natAddrs int
	nat, heavy             float64
	// signups is the share of users who are new: each signs up (POST
	// /v1/accounts) from its own address before its first session and
	// browses as that account, as people who just joined do.
	signups    float64
	think, gap time.Duration
	// shared, when set, puts every user on one of addrs addresses of the
	// shared block (behind addresses harvesters also send from).
	shared bool
	block  byte // the population's random streams
}

func buildUsers(ps *params, e *env) (runner, error) {
	s := &usersScn{
		count:    ps.int("count", 2000, 1, 100_000),
		addrs:    ps.int("addrs", 400, 1, 60_000),
		natAddrs: ps.int("nat-addrs", 8, 1, 1000),
		nat:      ps.float("nat", 0.3, 0, 1),
		heavy:    ps.float("heavy", 0.01, 0, 1),
		signups:  ps.float("signups", defaultSignups, 0, 1),
		think:    ps.dur("think", 3*time.Second),
		gap:      ps.dur("session-gap", 20*time.Second),
		block:    usersBlock,
	}
	if s.natAddrs >= s.addrs {
		s.natAddrs = s.addrs - 1
	}
	if err := ps.check(); err != nil {
		return runner{}, err
	}
	return runner{users: s.count, run: s.run}, nil
}

const usersBlock = 16

// defaultSignups: the share of a population's users who signed up today.
const defaultSignups = 0.05

// signupStream is the rng stream that picks the new users: apart from the
// users' own streams, so the others browse as they would without them.
const signupStream = 1 << 30

func (s *usersScn) run(ctx context.Context, e *env, p *pop) {
	rng := e.rngFor(s.block, 0)
	ids := e.distinctIDs(rng, s.count)
	newRng := e.rngFor(s.block, signupStream)
	var wg sync.WaitGroup
	for u, acc := range ids {
		var src int
		if s.natAddrs > 0 && rng.Float64() < s.nat {
			src = rng.IntN(s.natAddrs)
		} else {
			src = s.natAddrs + rng.IntN(s.addrs-s.natAddrs)
		}
		from := addr(usersBlock, src, 256)
		if s.shared {
			from = sharedAddr(rng.IntN(s.addrs))
		}
		// Heavy-tailed activity: Pareto(alpha 1.5) with mean 1, capped;
		// a few heavy users ten times as active.
		act := math.Min(8, (1.0/3)/math.Pow(1-rng.Float64(), 1/1.5))
		if rng.Float64() < s.heavy {
			act = 10
		}
		id := &ident{
			src:   from,
			keep:  true,
			token: e.agedToken(rng, acc),
			ua:    userAgents[rng.IntN(len(userAgents))],
		}
		if newRng.Float64() < s.signups {
			id.token = "" // signs up first (user)
		}
		wg.Add(1)
		go func(u, acc int, act float64) {
			defer wg.Done()
			s.user(ctx, e, p, id, u, acc, act)
		}(u, acc, act)
	}
	wg.Wait()
}

// user is one person: sessions of browsing, long pauses between.
func (s *usersScn) user(ctx context.Context, e *env, p *pop, id *ident, u, acc int, act float64) {
	rng := e.rngFor(s.block, 1+u)
	think := time.Duration(float64(s.think) / act)
	gap := time.Duration(float64(s.gap) / act)
	if !sleep(ctx, time.Duration(rng.Float64()*float64(gap))) {
		return
	}
	b := &browse{e: e, p: p, id: id, u: u, rng: rng, think: think}
	for ctx.Err() == nil {
		if id.token == "" {
			// A new user: no session before the sign-up went through; a
			// refused one is harm, and the person tries again later.
			if acc = s.signup(ctx, e, p, id, u); acc == errSignup {
				return
			}
		}
		if id.token != "" && b.session(ctx, acc) == errStop {
			return
		}
		if !sleep(ctx, expDur(rng, gap)) {
			return
		}
	}
}

// errSignup is signup's answer when the run ended.
const errSignup = -1

// signup signs user u up as id; the new account's id, 0 when the sign-up
// failed (id.token stays empty), or errSignup when the run ended.
func (s *usersScn) signup(ctx context.Context, e *env, p *pop, id *ident, u int) int {
	a, err := e.do(ctx, p, id, u, "POST", "/v1/accounts")
	if err == errStop {
		return errSignup
	}
	if err != nil || a.status != 201 {
		return 0
	}
	var r struct {
		AccountID string `json:"account_id"`
		Token     string `json:"token"`
	}
	if json.Unmarshal(a.body, &r) != nil || r.Token == "" {
		p.errs.Add(1)
		return 0
	}
	acc, err := strconv.Atoi(r.AccountID)
	if err != nil || acc <= 0 {
		p.errs.Add(1)
		return 0
	}
	id.token, id.account = r.Token, r.AccountID
	return acc
}

type browse struct {
	e     *env
	p     *pop
	id    *ident
	u     int
	rng   *rand.Rand
	think time.Duration
}

func (b *browse) pause(ctx context.Context) error {
	if !sleep(ctx, expDur(b.rng, b.think)) {
		return errStop
	}
	return nil
}

// session: the feed, a few authors' profiles, sometimes their followers or
// posts, sometimes a search for a name seen.
func (b *browse) session(ctx context.Context, acc int) error {
	var seen []summary
	feed, err := b.e.postPage(ctx, b.p, b.id, b.u, "/v1/feed?limit=20")
	if err == errStop {
		return err
	}
	if feed != nil {
		for _, po := range feed.Posts {
			seen = append(seen, po.Author)
		}
		if feed.NextCursor != nil && b.rng.Float64() < 0.3 {
			if err := b.pause(ctx); err != nil {
				return err
			}
			more, err := b.e.postPage(ctx, b.p, b.id, b.u, "/v1/feed?limit=20&cursor="+url.QueryEscape(*feed.NextCursor))
			if err == errStop {
				return err
			}
			if more != nil {
				for _, po := range more.Posts {
					seen = append(seen, po.Author)
				}
			}
		}
	}
	if len(seen) == 0 {
		if err := b.pause(ctx); err != nil {
			return err
		}
		fl, err := b.e.userPage(ctx, b.p, b.id, b.u, "/v1/users/"+strconv.Itoa(acc)+"/following?limit=20")
		if err == errStop {
			return err
		}
		if fl != nil {
			seen = fl.Users
		}
	}
	opens := 1 + b.rng.IntN(3)
	for i := 0; i < opens && len(seen) > 0; i++ {
		if err := b.pause(ctx); err != nil {
			return err
		}
		who := seen[b.rng.IntN(len(seen))]
		if _, err := b.e.openProfile(ctx, b.p, b.id, b.u, "/v1/users/"+url.PathEscape(who.ID)); err == errStop {
			return err
		}
		switch r := b.rng.Float64(); {
		case r < 0.3 && who.FollowerCount > 0:
			if err := b.pause(ctx); err != nil {
				return err
			}
			fl, err := b.e.userPage(ctx, b.p, b.id, b.u, "/v1/users/"+url.PathEscape(who.ID)+"/followers?limit=20")
			if err == errStop {
				return err
			}
			if fl != nil && len(fl.Users) > 0 && b.rng.Float64() < 0.6 {
				if err := b.pause(ctx); err != nil {
					return err
				}
				f := fl.Users[b.rng.IntN(len(fl.Users))]
				if _, err := b.e.openProfile(ctx, b.p, b.id, b.u, "/v1/users/"+url.PathEscape(f.ID)); err == errStop {
					return err
				}
			}
		case r < 0.5:
			if err := b.pause(ctx); err != nil {
				return err
			}
			if _, err := b.e.postPage(ctx, b.p, b.id, b.u, "/v1/users/"+url.PathEscape(who.ID)+"/posts?limit=10"); err == errStop {
				return err
			}
		}
	}
	if len(seen) > 0 && b.rng.Float64() < 0.25 {
		if err := b.pause(ctx); err != nil {
			return err
		}
		name := seen[b.rng.IntN(len(seen))].FullName
		q := strings.ToLower(prefix(name, 3))
		if len(q) >= 2 {
			res, err := b.e.userPage(ctx, b.p, b.id, b.u, "/v1/search?limit=20&q="+url.QueryEscape(q))
			if err == errStop {
				return err
			}
			if res != nil && len(res.Users) > 0 {
				if err := b.pause(ctx); err != nil {
					return err
				}
				f := res.Users[b.rng.IntN(len(res.Users))]
				if _, err := b.e.openProfile(ctx, b.p, b.id, b.u, "/v1/users/"+url.PathEscape(f.ID)); err == errStop {
					return err
				}
			}
		}
	}
	if b.rng.Float64() < 0.1 {
		if err := b.pause(ctx); err != nil {
			return err
		}
		if _, err := b.e.openProfile(ctx, b.p, b.id, b.u, "/v1/me"); err == errStop {
			return err
		}
	}
	return nil
}

// prefix is the first n runes of s.
func prefix(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}
