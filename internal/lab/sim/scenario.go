package sim

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// scenario is one named population: what it is and how to build it.
type scenario struct {
	name      string
	block     byte // source addresses are 127.block.x.y
	harvester bool
	build     func(ps *params, e *env) (runner, error)
}

// runner is a built population: how many users it has (for harm; 0 for
// harvesters) and the loop that drives it until ctx ends or its bound is
// spent.
type runner struct {
	users int
	run   func(ctx context.Context, e *env, p *pop)
}

// scenarios lists every scenario; the order is the order of reports.
func scenarios() []scenario {
	return []scenario{
		{"users", 16, false, buildUsers},
		{"partner", 17, false, buildPartner},
		{"naive", 18, true, buildNaive},
		{"slow", 19, true, buildSlow},
		{"ip-rotation", 20, true, buildIPRotation},
		{"account-rotation", 21, true, buildAccountRotation},
		{"fleet", 22, true, buildFleet},
		{"nat-users", sharedBlock, false, buildNatUsers},
		{"searchers", searchersBlock, false, buildSearchers},
		{"nat-harvester", natHarvBlock, true, buildNatHarvester},
		{"search-harvester", searchHarvBlk, true, buildSearchHarvester},
		{"hijacked", hijackedBlock, true, buildHijacked},
		{"cohort", cohortBlock, true, buildCohort},
	}
}

// Names lists the scenario names in report order.
func Names() []string {
	var n []string
	for _, s := range scenarios() {
		n = append(n, s.name)
	}
	return n
}

// DefaultMix is the demo's mix.
const DefaultMix = "users,partner,nat-users,fleet,nat-harvester"

// groups names the harm group of each legitimate population.
var groups = map[string]string{
	"users":     "alone",
	"nat-users": "shared address",
	"searchers": "searchers",
	"partner":   "partner",
}

// Browser and app user agents the legitimate users pick from.
var userAgents = []string{
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"PhotoApp/8.12 (iOS 17.4; iPhone15,2)",
	"PhotoApp/8.11 (Android 14; SM-S918B)",
}

// userAgentAt is the i-th of userAgents, round robin: one per account.
func userAgentAt(i int) string { return userAgents[i%len(userAgents)] }

// rngFor gives each population and worker its own deterministic stream.
func (e *env) rngFor(block byte, stream int) *rand.Rand {
	return rand.New(rand.NewPCG(e.seed, uint64(block)<<32|uint64(stream)))
}

// workers runs n goroutines and waits for them: worker w calls work with
// its own stream (1+w) of block's deterministic rng.
func (e *env) workers(n int, block byte, work func(rng *rand.Rand)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(e.rngFor(block, 1+w))
		}()
	}
	wg.Wait()
}

// agedHarvesters are n harvesting accounts created long ago (bought or
// hijacked), the i-th sending from src(i) with the user agent ua(i).
func (e *env) agedHarvesters(rng *rand.Rand, n int, src func(i int) netip.Addr, ua func(i int) string) []*ident {
	var out []*ident
	for i, a := range e.harvesterIDs(rng, n) {
		out = append(out, &ident{src: src(i), keep: true, token: e.agedToken(rng, a), account: strconv.Itoa(a), ua: ua(i)})
	}
	return out
}

// agedToken mints a token for a real account created long ago.
func (e *env) agedToken(rng *rand.Rand, account int) string {
	now := time.Now()
	created := now.Add(-time.Duration(365+rng.IntN(4*365)) * 24 * time.Hour)
	return mintToken(e.secret, strconv.Itoa(account), created, now)
}

// distinctIDs picks n distinct real profile ids for people: never one a
// harvester uses (harvesterIDs), so a ban on a harvester's account never
// lands on a simulated person's. (In life a hijacked account is also its
// owner's: banning it locks the owner out too.)
func (e *env) distinctIDs(rng *rand.Rand, n int) []int { return e.pickIDs(rng, n, false) }

// harvesterIDs picks n distinct real profile ids for harvesters' aged
// accounts: every eighth id is theirs.
func (e *env) harvesterIDs(rng *rand.Rand, n int) []int { return e.pickIDs(rng, n, true) }

func (e *env) pickIDs(rng *rand.Rand, n int, harvester bool) []int {
	max := e.profiles - e.profiles/8
	if harvester {
		max = e.profiles / 8
	}
	if n > max {
		n = max
	}
	seen := make(map[int]bool, n)
	ids := make([]int, 0, n)
	for len(ids) < n {
		id := 1 + rng.IntN(e.profiles)
		if (id%8 == 0) != harvester {
			continue
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// expDur is an exponentially distributed pause with the given mean.
func expDur(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

// ScenarioOf names the scenario whose block a source address is in, or "".
func ScenarioOf(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return ""
	}
	b := a.As4()
	if b[0] != 127 {
		return ""
	}
	for _, s := range scenarios() {
		if s.block == b[1] {
			return s.name
		}
	}
	return ""
}
