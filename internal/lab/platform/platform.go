package platform

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Platform. The data is a pure function of Profiles and
// Seed; JWTSecret signs and verifies account tokens.
type Options struct {
	Profiles  int
	Seed      int64
	JWTSecret string
}

// MaxProfiles bounds Options.Profiles; MaxSignups bounds the accounts
// POST /v1/accounts may add (memory stays bounded; ids stay in 24 bits).
const (
	MaxProfiles = 10_000_000
	MaxSignups  = 1 << 20
)

// Platform is the synthetic network plus its sign-ups. Profiles 1..N are
// derived on demand from the seed; only the follow graph (two CSR int32
// arrays) and the search order (two int32 arrays) are stored. Sign-ups are
// the only mutable state and sit behind mu.
type Platform struct {
	g         *gen
	n         int
	secret    []byte
	following csr
	followers csr
	search    *searchIndex
	tokens    *tokenCache
	bufs      sync.Pool
	gzips     sync.Pool

	nAccounts atomic.Int64 // N + sign-ups so far; read without mu

	mu      sync.RWMutex
	signups []signup          // account N+1+i
	extra   map[int32][]int32 // profile id -> sign-ups following it, in id order
}

// signup is an account made by POST /v1/accounts: no email, phone or posts.
type signup struct {
	created int64
	follows []int32 // sorted
}

// New builds the network for opts. With 1,000,000 profiles it takes a few
// seconds and a few hundred MB (see BenchmarkNew).
func New(opts Options) (*Platform, error) {
	if opts.Profiles < 1 || opts.Profiles > MaxProfiles {
		return nil, fmt.Errorf("platform: profiles %d out of range 1..%d", opts.Profiles, MaxProfiles)
	}
	if opts.JWTSecret == "" {
		return nil, errors.New("platform: empty JWT secret")
	}
	g := newGen(opts.Seed)
	p := &Platform{
		g:      g,
		n:      opts.Profiles,
		secret: []byte(opts.JWTSecret),
		tokens: newTokenCache(),
		extra:  make(map[int32][]int32),
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.search = buildSearch(g, p.n) })
	p.following, p.followers = buildGraph(g, p.n)
	wg.Wait()
	p.nAccounts.Store(int64(p.n))
	p.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	return p, nil
}

// Profiles is N, the number of generated profiles.
func (p *Platform) Profiles() int { return p.n }

func (p *Platform) accounts() int { return int(p.nAccounts.Load()) }

func (p *Platform) hasSignups() bool { return p.nAccounts.Load() > int64(p.n) }

func (p *Platform) baseFollowers(id int) int {
	if id > p.n {
		return 0
	}
	return int(p.followers.off[id+1] - p.followers.off[id])
}

func (p *Platform) followerCount(id int) int {
	c := p.baseFollowers(id)
	if p.hasSignups() {
		p.mu.RLock()
		c += len(p.extra[int32(id)])
		p.mu.RUnlock()
	}
	return c
}

func (p *Platform) followingCount(id int) int {
	if id <= p.n {
		return int(p.following.off[id+1] - p.following.off[id])
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.signups[id-p.n-1].follows)
}

// followersPage returns the followers at [at, at+limit) of the whole list:
// generated followers, then sign-ups, so offsets stay valid as sign-ups come.
func (p *Platform) followersPage(id, at, limit int) (page []int32, total int) {
	var base []int32
	if id <= p.n {
		base = p.followers.list(id)
	}
	var extra []int32
	if p.hasSignups() {
		p.mu.RLock()
		defer p.mu.RUnlock()
		extra = p.extra[int32(id)]
	}
	return window(base, extra, at, limit), len(base) + len(extra)
}

func (p *Platform) followingList(id int) []int32 {
	if id <= p.n {
		return p.following.list(id)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.signups[id-p.n-1].follows // never changed after sign-up
}

func window(a, b []int32, at, limit int) []int32 {
	out := make([]int32, 0, limit)
	for i := at; i < at+limit && i < len(a)+len(b); i++ {
		if i < len(a) {
			out = append(out, a[i])
		} else {
			out = append(out, b[i-len(a)])
		}
	}
	return out
}

func (p *Platform) postCount(id int) int {
	if id > p.n {
		return 0
	}
	return p.g.postCount(id)
}

func (p *Platform) created(id int) int64 {
	if id <= p.n {
		return p.g.created(id)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.signups[id-p.n-1].created
}

var errFull = errors.New("platform: sign-up capacity reached")

// signUp adds account N+1+i. It follows up to 10 distinct profiles drawn
// by popularity: a uniformly drawn edge's target is a profile drawn with
// probability proportional to its follower count.
func (p *Platform) signUp(now time.Time) (id int, token string, created int64, err error) {
	p.mu.Lock()
	if len(p.signups) >= MaxSignups {
		p.mu.Unlock()
		return 0, "", 0, errFull
	}
	id = p.n + len(p.signups) + 1
	r := rng{s: p.g.h(id, tagSignup)}
	want := min(10, p.n)
	follows := make([]int32, 0, want)
	for tries := 0; len(follows) < want && tries < 1000; tries++ {
		var v int32
		if e := len(p.following.adj); e > 0 {
			v = p.following.adj[r.below(uint64(e))]
		} else {
			v = int32(r.below(uint64(p.n))) + 1
		}
		if !slices.Contains(follows, v) {
			follows = append(follows, v)
		}
	}
	for v := int32(1); len(follows) < want; v++ {
		if !slices.Contains(follows, v) {
			follows = append(follows, v)
		}
	}
	slices.Sort(follows)
	created = now.Unix()
	p.signups = append(p.signups, signup{created: created, follows: follows})
	for _, v := range follows {
		p.extra[v] = append(p.extra[v], int32(id))
	}
	p.nAccounts.Store(int64(id))
	p.mu.Unlock()

	token, err = MintToken(string(p.secret), strconv.Itoa(id), now, now)
	if err != nil {
		return 0, "", 0, err
	}
	return id, token, created, nil
}
