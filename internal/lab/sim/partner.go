package sim

import (
	"context"
	"math/rand/v2"
	"net/url"
	"strconv"
)

type partnerScn struct {
	key                    string
	accounts, addrs, works int
	rate                   float64
}

func buildPartner(ps *params, e *env) (runner, error) {
	s := &partnerScn{
		key:      ps.str("key", "partner-app"),
		accounts: ps.int("accounts", 500, 1, 100_000),
		addrs:    ps.int("addrs", 2, 1, 254),
		works:    ps.int("workers", 16, 1, 1024),
		rate:     ps.float("rate", 150, 0.01, 100_000),
	}
	if err := ps.check(); err != nil {
		return runner{}, err
	}
	return runner{users: s.accounts, run: s.run}, nil
}

const partnerBlock = 17

// run: the app's servers sync their connected accounts at a steady rate:
// the account itself, its posts, its followers and their profiles.
func (s *partnerScn) run(ctx context.Context, e *env, p *pop) {
	rng := e.rngFor(partnerBlock, 0)
	accs := e.distinctIDs(rng, s.accounts)
	ids := make([]*ident, len(accs))
	for i, a := range accs {
		ids[i] = &ident{src: addr(partnerBlock, i%s.addrs, 1), keep: true,
			token: e.agedToken(rng, a), appKey: s.key, ua: "PartnerSync/2.4 (+https://partner.example)"}
	}
	pc := newPacer(s.rate)
	e.workers(s.works, partnerBlock, func(rng *rand.Rand) {
		var followers []string // recently listed, to open
		for pc.wait(ctx) {
			u := rng.IntN(len(accs))
			acc, id := strconv.Itoa(accs[u]), ids[u]
			var err error
			switch r := rng.Float64(); {
			case r < 0.1:
				_, err = e.openProfile(ctx, p, id, u, "/v1/me")
			case r < 0.3:
				_, err = e.postPage(ctx, p, id, u, "/v1/users/"+acc+"/posts?limit=20")
			case r < 0.5 || len(followers) == 0:
				var fl *userPage
				fl, err = e.userPage(ctx, p, id, u, "/v1/users/"+acc+"/followers?limit=50")
				if fl != nil {
					followers = followers[:0]
					for _, f := range fl.Users {
						followers = append(followers, f.ID)
					}
				}
			default:
				f := followers[rng.IntN(len(followers))]
				_, err = e.openProfile(ctx, p, id, u, "/v1/users/"+url.PathEscape(f))
			}
			if err == errStop {
				return
			}
		}
	})
}
