package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/bits"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ident is who a request is from: a source address and the headers that
// name an account or an app.
type ident struct {
	src     netip.Addr
	keep    bool // keep-alive connections from src
	token   string
	account string // the account id, when known
	appKey  string
	ua      string
}

// pop is one running population and its counters.
type pop struct {
	name      string
	harvester bool
	start     time.Time
	max       int64
	pace      *pacer // when set, every request waits for its slot

	sent, ok, refused, errs, masked, notFound atomic.Int64
	firstRefusal, firstMask                   atomic.Int64 // ns since start, 0 = none

	mu     sync.Mutex
	status map[int]int64

	harvest  []atomic.Uint64 // bitset over real profile indexes
	nHarvest atomic.Int64
	accounts atomic.Int64 // harvesters: accounts they harvest with (0: not counted)

	// legitimate populations: per user, whether harmed, and whether active.
	harmed, active []atomic.Bool
	harmedReqs     atomic.Int64

	// inflight counts requests between their reservation and their end;
	// stop (set by Run) ends the population once its bound is spent and
	// none is in flight, so that clients asleep between actions (a user
	// pauses up to a minute) do not hold the run open until its duration.
	inflight atomic.Int64
	stop     context.CancelFunc

	firstErr atomic.Pointer[string] // the first failed request's error (Population.FirstError)
}

// failed counts a request that got no answer, keeping the first error.
func (p *pop) failed(err error) {
	p.errs.Add(1)
	p.noteStatus(0)
	msg := err.Error()
	p.firstErr.CompareAndSwap(nil, &msg)
}

// settle ends a request of do; the last one of a spent bound stops the
// population.
func (p *pop) settle() {
	if p.inflight.Add(-1) == 0 && p.sent.Load() >= p.max && p.stop != nil {
		p.stop()
	}
}

func newPop(name string, harvester bool, max int64, profiles, users int) *pop {
	p := &pop{name: name, harvester: harvester, max: max, status: map[int]int64{}}
	if harvester {
		p.harvest = make([]atomic.Uint64, (profiles+63)/64)
	}
	p.harmed = make([]atomic.Bool, users)
	p.active = make([]atomic.Bool, users)
	return p
}

// take reserves one request of the population's bound.
func (p *pop) take() bool {
	if p.sent.Add(1) > p.max {
		p.sent.Add(-1)
		return false
	}
	return true
}

func (p *pop) since() int64 {
	d := int64(time.Since(p.start))
	if d < 1 {
		d = 1
	}
	return d
}

func (p *pop) noteStatus(code int) {
	p.mu.Lock()
	p.status[code]++
	p.mu.Unlock()
}

func (p *pop) harm(user int) {
	if user >= 0 && user < len(p.harmed) {
		p.harmed[user].Store(true)
	}
}

// markHarvest records a profile whose true contact reached the harvester.
func (p *pop) markHarvest(i int) {
	w, b := i/64, uint64(1)<<(i%64)
	for {
		old := p.harvest[w].Load()
		if old&b != 0 {
			return
		}
		if p.harvest[w].CompareAndSwap(old, old|b) {
			p.nHarvest.Add(1)
			return
		}
	}
}

func (p *pop) harvestedCount() int64 {
	var n int
	for i := range p.harvest {
		n += bits.OnesCount64(p.harvest[i].Load())
	}
	return int64(n)
}

// env is what every scenario shares during a run.
type env struct {
	base     string
	truth    *Truth
	secret   []byte
	net      *network
	profiles int
	seed     uint64

	refMu   sync.Mutex
	refused map[netip.Addr]int64 // refusals per source address, bounded

	tally *tally // what the clients were served (served.go)
	take  *take  // what harvesters keep (take.go); nil: nothing kept

	// misnamed counts full profiles of real ids served under a username
	// the truth does not give them (Report.TruthMismatch).
	misnamed atomic.Int64
	// missing counts look-ups of real ids that the target does not hold:
	// answered 404 by id (/v1/users/ID), or served as a sign-up, without
	// contact; it holds fewer profiles than the truth (Report.TruthMissing).
	missing atomic.Int64
}

const maxRefusedAddrs = 200_000

func (e *env) noteRefused(src netip.Addr) {
	e.refMu.Lock()
	if _, ok := e.refused[src]; ok || len(e.refused) < maxRefusedAddrs {
		e.refused[src]++
	}
	e.refMu.Unlock()
}

var errStop = errors.New("sim: bound reached")

// answer is one HTTP answer, read and classified.
type answer struct {
	status  int
	body    []byte
	masked  bool // a Warden-*Mask* header
	refused bool
}

func refusal(code int) bool { return code == 403 || code == 429 || code == 503 }

// do sends one request as id for population p (user is the legitimate
// user's index, or -1). It returns errStop when the population's bound or
// time is spent; other errors are counted and returned.
func (e *env) do(ctx context.Context, p *pop, id *ident, user int, method, path string) (*answer, error) {
	if p.pace != nil && !p.pace.wait(ctx) {
		return nil, errStop
	}
	// Counted in flight before the reservation: another request ending
	// meanwhile must not take this one for the last.
	p.inflight.Add(1)
	defer p.settle()
	if ctx.Err() != nil || !p.take() {
		return nil, errStop
	}
	if user >= 0 && user < len(p.active) {
		p.active[user].Store(true)
	}
	c, rctx := e.net.client(ctx, id.src, id.keep)
	req, err := http.NewRequestWithContext(rctx, method, e.base+path, nil)
	if err != nil {
		p.errs.Add(1)
		return nil, err
	}
	if id.token != "" {
		req.Header.Set("Authorization", "Bearer "+id.token)
	}
	if id.appKey != "" {
		req.Header.Set("X-App-Key", id.appKey)
	}
	if id.ua != "" {
		req.Header.Set("User-Agent", id.ua)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			p.sent.Add(-1) // cut off by the end of the run: not counted
			e.tally.cut()
			return nil, errStop
		}
		p.failed(err)
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		if ctx.Err() != nil {
			e.tally.cut()
			return nil, errStop
		}
		p.failed(err)
		return nil, err
	}
	a := &answer{status: resp.StatusCode, body: body, refused: refusal(resp.StatusCode)}
	for k := range resp.Header {
		if strings.HasPrefix(k, "Warden-") && strings.Contains(k, "Mask") {
			a.masked = true
		}
	}
	p.noteStatus(a.status)
	switch {
	case a.refused:
		p.refused.Add(1)
		p.firstRefusal.CompareAndSwap(0, p.since())
		e.noteRefused(id.src)
	case a.status == 404:
		p.notFound.Add(1)
	case a.status >= 200 && a.status < 300:
		p.ok.Add(1)
	default:
		p.errs.Add(1)
	}
	if a.masked {
		p.masked.Add(1)
		p.firstMask.CompareAndSwap(0, p.since())
	}
	if (a.refused || a.masked) && user >= 0 {
		p.harm(user)
		p.harmedReqs.Add(1)
	}
	if method == "GET" {
		e.tally.note(id, path, a)
		if p.harvester && e.take != nil {
			e.take.note(p, id, path, a)
		}
	}
	return a, nil
}

// wire types: only the fields sim reads.
type summary struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	FullName      string `json:"full_name"`
	FollowerCount int    `json:"follower_count"`
}

type profile struct {
	ID            string          `json:"id"`
	Username      string          `json:"username"`
	FullName      string          `json:"full_name"`
	FollowerCount int             `json:"follower_count"`
	Email         *string         `json:"email"`
	Phone         *string         `json:"phone"`
	Warden        json.RawMessage `json:"_warden"`
}

type userPage struct {
	Users      []summary `json:"users"`
	NextCursor *string   `json:"next_cursor"`
}

type post struct {
	ID     string  `json:"id"`
	Author summary `json:"author"`
}

type postPage struct {
	Posts      []post  `json:"posts"`
	NextCursor *string `json:"next_cursor"`
}

// openProfile fetches a full profile (path is /v1/users/ID, /v1/me or
// /v1/users/by-username/NAME) and scores it: for a harvester, whether the
// true contact arrived; for a legitimate user, whether a field was masked.
func (e *env) openProfile(ctx context.Context, p *pop, id *ident, user int, path string) (*profile, error) {
	a, err := e.do(ctx, p, id, user, "GET", path)
	if err == nil && a.status == 404 {
		if ref, ok := strings.CutPrefix(path, "/v1/users/"); ok {
			if _, real := e.truth.real(ref); real {
				e.missing.Add(1)
			}
		}
	}
	if err != nil || a.status != 200 {
		return nil, err
	}
	return e.scoreProfile(p, a, user), nil
}

// scoreProfile scores a full profile answer (status 200): for a harvester,
// whether the true contact arrived; for a legitimate user, whether a field
// was masked.
func (e *env) scoreProfile(p *pop, a *answer, user int) *profile {
	var pr profile
	if json.Unmarshal(a.body, &pr) != nil {
		p.errs.Add(1)
		return nil
	}
	email, phone := "", ""
	if pr.Email != nil {
		email = *pr.Email
	}
	if pr.Phone != nil {
		phone = *pr.Phone
	}
	if p.harvester {
		if i, ok := e.truth.matches(pr.ID, email, phone); ok {
			p.markHarvest(i)
		}
	}
	i, real := e.truth.real(pr.ID)
	if real && pr.Username != "" && !e.truth.named(i, pr.Username) {
		e.misnamed.Add(1)
	}
	marked := len(pr.Warden) > 0 && string(pr.Warden) != "null"
	// Every profile of the truth has an email and a phone; both empty,
	// unmasked, is an account signed up on a platform smaller than the
	// truth (its ids follow the platform's last profile).
	if real && !marked && pr.Email != nil && pr.Phone != nil && *pr.Email == "" && *pr.Phone == "" {
		e.missing.Add(1)
	}
	if (real && (pr.Email == nil || pr.Phone == nil)) || marked {
		if !a.masked { // not already counted by header
			p.masked.Add(1)
			p.firstMask.CompareAndSwap(0, p.since())
			if user >= 0 {
				p.harm(user)
				p.harmedReqs.Add(1)
			}
		}
	}
	return &pr
}

func (e *env) userPage(ctx context.Context, p *pop, id *ident, user int, path string) (*userPage, error) {
	a, err := e.do(ctx, p, id, user, "GET", path)
	if err != nil || a.status != 200 {
		return nil, err
	}
	var up userPage
	if json.Unmarshal(a.body, &up) != nil {
		p.errs.Add(1)
		return nil, nil
	}
	return &up, nil
}

func (e *env) postPage(ctx context.Context, p *pop, id *ident, user int, path string) (*postPage, error) {
	a, err := e.do(ctx, p, id, user, "GET", path)
	if err != nil || a.status != 200 {
		return nil, err
	}
	var pp postPage
	if json.Unmarshal(a.body, &pp) != nil {
		p.errs.Add(1)
		return nil, nil
	}
	return &pp, nil
}

// signup creates an account with POST /v1/accounts and returns its id and
// token.
func (e *env) signup(ctx context.Context, p *pop, id *ident) (string, string, error) {
	a, err := e.do(ctx, p, id, -1, "POST", "/v1/accounts")
	if err != nil {
		return "", "", err
	}
	if a.status != 201 {
		return "", "", nil
	}
	var s struct {
		AccountID string `json:"account_id"`
		Token     string `json:"token"`
	}
	if json.Unmarshal(a.body, &s) != nil || s.Token == "" {
		p.errs.Add(1)
		return "", "", nil
	}
	return s.AccountID, s.Token, nil
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pacer spaces events at a steady rate across goroutines.
type pacer struct {
	mu       sync.Mutex
	next     time.Time
	interval time.Duration
}

func newPacer(perSecond float64) *pacer {
	if perSecond <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the caller's slot; false when ctx ended.
func (pc *pacer) wait(ctx context.Context) bool {
	if pc.interval == 0 {
		return ctx.Err() == nil
	}
	pc.mu.Lock()
	now := time.Now()
	if pc.next.Before(now) {
		pc.next = now
	}
	at := pc.next
	pc.next = pc.next.Add(pc.interval)
	pc.mu.Unlock()
	return sleep(ctx, time.Until(at))
}
