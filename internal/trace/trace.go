package trace

import (
	"bytes"
	"hash/maphash"
	"io"
	"maps"
	"math"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// DefaultFalseAccusation is the default bound on the chance that a trace
// accuses anyone who did not take the copy.
const DefaultFalseAccusation = 1e-6

// coverTarget is the share of the copy's subjects the coverage set explains.
const coverTarget = 0.95

// DefaultNamedMin is how many of the copy's subjects an identity must have
// been served to be named (issue 23: every identity that took at least
// 200 of the copy's records is named).
const DefaultNamedMin = 200

// maxNamed bounds the named list a report carries (Report.NamedTotal
// counts them all): a copy of a whole platform names its heavy readers too.
const maxNamed = 10000

// Tracer reads copies and reports who they came from.
type Tracer struct {
	c       *canary.Canaries // nil: no canary evidence
	workers int
	mu      sync.Mutex
	records int64
	subj    *roaring.Bitmap    // the copy's real subject ids (numeric)
	found   map[canaryKey]bool // canaries verified
	rejects int                // canary-shaped records the key did not make
	idsOnly int                // records of a canary's id alone: nothing to verify it with
	contact int64              // records with an e-mail or phone and no id or username
	names   int64              // records with a username and no id
	// contacts are the contact-only records' values that can be a
	// canary's (contact.go), matched at Report against the ledger's.
	contacts map[contact]struct{}
	stats    []ReadStats
	named    int // DefaultNamedMin unless NameFrom said otherwise
}

type canaryKey struct {
	key   int
	index uint32
}

// New returns a Tracer; c nil traces by coverage only.
func New(c *canary.Canaries, workers int) *Tracer {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Tracer{c: c, workers: workers, subj: roaring.New(), found: map[canaryKey]bool{}, contacts: map[contact]struct{}{}, named: DefaultNamedMin}
}

// NameFrom sets how many of the copy's subjects an identity must have been
// served to be named in the report (at least 1).
func (t *Tracer) NameFrom(n int) { t.named = max(1, n) }

// worker is one reader goroutine's own tally.
type worker struct {
	n        int64
	subj     *roaring.Bitmap
	ids      []uint32
	found    map[canaryKey]bool
	rejects  int
	idsOnly  int
	contact  int64
	names    int64
	contacts map[contact]struct{}
}

// Read reads one copy (any format, gzip'd or not) into the tally.
func (t *Tracer) Read(r io.Reader, counted func(int)) (ReadStats, error) {
	ws := make([]*worker, t.workers)
	for i := range ws {
		ws[i] = &worker{subj: roaring.New(), found: map[canaryKey]bool{}, contacts: map[contact]struct{}{}}
	}
	var lo, hi int64
	if t.c != nil {
		ids := t.c.Config().IDs
		lo, hi = ids.Min, ids.Max
	}
	st, err := Read(r, t.workers, func(w int, rec *Record) {
		x := ws[w]
		x.n++
		// A value as a careless export pads it (" 17 ", "lena.morgan\t")
		// is the value: a padded id was no id, a padded username beside
		// a canary's id a forgery. A CSV's values are trimmed already.
		rec.ID, rec.Username = trimPad(rec.ID), trimPad(rec.Username)
		rec.Email, rec.Phone = trimPad(rec.Email), trimPad(rec.Phone)
		if len(rec.Username) > 1 && rec.Username[0] == '@' {
			rec.Username = rec.Username[1:] // a handle, "@lena.morgan"
		}
		if rec.ID == nil && rec.Username == nil {
			x.contact++ // no coverage; a canary only by its contact values (contact.go)
			if t.c != nil {
				keepContact(t.c, rec, x.contacts)
			}
			return
		}
		if rec.ID == nil {
			x.names++ // no coverage: the ledger keeps ids
		}
		id, numeric := parseID(rec.ID)
		if t.c != nil && (numeric && id >= lo && id <= hi || rec.ID == nil && canaryShapedName(rec.Username)) {
			if p, ok := t.c.Verify(string(rec.ID), string(rec.Username), string(rec.Email), string(rec.Phone)); ok {
				x.found[canaryKey{p.Key, p.Index}] = true
			} else if _, made := t.c.ParseID(string(rec.ID)); made && rec.Username == nil && rec.Email == nil && rec.Phone == nil {
				// A canary's id with nothing beside it: no forgery
				// shown, none verified (a forged id of the range is a
				// canary's one time in the range's spacing, 16 or more).
				x.idsOnly++
			} else {
				x.rejects++
			}
			return
		}
		if numeric && id >= 0 && id <= math.MaxUint32 {
			x.ids = append(x.ids, uint32(id))
			if len(x.ids) == 4096 {
				x.subj.AddMany(x.ids)
				x.ids = x.ids[:0]
			}
		}
	}, counted)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, x := range ws {
		x.subj.AddMany(x.ids)
		t.subj.Or(x.subj)
		t.records += x.n
		t.rejects += x.rejects
		t.idsOnly += x.idsOnly
		t.contact += x.contact
		t.names += x.names
		for k := range x.found {
			t.found[k] = true
		}
		maps.Copy(t.contacts, x.contacts)
	}
	t.stats = append(t.stats, st)
	return st, err
}

// Records is how many records the reads so far have found.
func (t *Tracer) Records() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.records
}

// bytesOf views s as bytes without copying, for Plan's id function, which
// only reads them while it runs: a conversion allocated once per record
// replayed (1.0 s of the 49,000,000-record trace's 3.6 s in Plan).
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// trimPad is v without leading and trailing white space; nil when v is
// nothing else (an absent field). It looks at the two ends first: most
// values have no padding and cost two compares.
func trimPad(v []byte) []byte {
	if n := len(v); n == 0 || v[0] > ' ' && v[0] < 0x80 && v[n-1] > ' ' && v[n-1] < 0x80 {
		return v
	}
	return bytes.TrimSpace(v)
}

func parseID(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// canaryShapedName: a username ending in "_" and 8 digits at or above 2^24.
func canaryShapedName(u []byte) bool {
	i := bytes.LastIndexByte(u, '_')
	if i < 0 || len(u)-i-1 != 8 {
		return false
	}
	v, ok := parseID(u[i+1:])
	return ok && v >= 1<<24
}

// Report is what a trace found.
type Report struct {
	Records        int64 `json:"records"`
	Subjects       int   `json:"subjects"` // distinct real subject ids
	CanariesFound  int   `json:"canaries_found"`
	CanariesForged int   `json:"canary_shaped_rejected"` // shaped like canaries, not made by the key
	// CanaryIDsOnly counts the records holding a canary's id (one the key
	// made) and no username, e-mail or phone: nothing to verify them with,
	// so neither canaries found nor forgeries. A copy of ids alone is
	// evidence by the ledger's coverage, not by its canaries.
	CanaryIDsOnly int `json:"canary_ids_unverified"`
	// UsernameOnly counts the records with a username and no id: they give
	// no ledger coverage (the ledger keeps ids); their canaries are found.
	UsernameOnly int64 `json:"username_only"`
	// ContactOnly counts the records with an e-mail or a phone and no id
	// or username: they give no ledger coverage (the ledger keeps ids);
	// their canaries are found by looking their values up among the
	// canaries the ledger says were served (ContactCanaries, within
	// CanariesFound; none without a ledger).
	ContactOnly     int64 `json:"contact_only"`
	ContactCanaries int   `json:"contact_canaries"`
	// ContactUnmatched counts the contact-only records whose values can be
	// a canary's but are no served canary's: forged, a canary no list
	// answer showed (a canary's own followers), a phone several served
	// canaries share, or phone-only values no likelier to be served
	// canaries' than numbers drawn at random from the ranges.
	ContactUnmatched int         `json:"contact_unmatched"`
	Accused          []Accused   `json:"accused"`
	Coverage         []Cover     `json:"coverage"`
	Covered          float64     `json:"covered"` // share of the subjects the coverage set explains
	Served           float64     `json:"served"`  // share of the subjects the ledger saw served to anyone
	FalseAccusation  float64     `json:"false_accusation"`
	Candidates       int         `json:"candidates"` // identities scored
	Colluders        int         `json:"colluders_tolerated"`
	Inputs           []ReadStats `json:"inputs"`
	// Named are the identities the ledger shows were served at least
	// NamedMin of the copy's subjects, most first: who took its records,
	// accused or not (the ledger is exact about who was served what; it
	// cannot tell a harvester from a heavy reader, the canaries can).
	Named      []Named `json:"named"`
	NamedMin   int     `json:"named_min"`
	NamedTotal int     `json:"named_total"` // all of them; the list stops at 10,000
}

// Named is one identity served at least Report.NamedMin of the copy's subjects.
type Named struct {
	Facet    string  `json:"facet"`
	Value    string  `json:"value"`
	Subjects int     `json:"subjects"` // of the copy's, served to it
	Share    float64 `json:"share"`
	Accused  bool    `json:"accused"`
}

// Accused is an identity the canaries name.
type Accused struct {
	Facet     string  `json:"facet"`
	Value     string  `json:"value"`
	Canaries  int     `json:"canaries"` // canaries found that it was shown
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	Bound     float64 `json:"false_accusation_bound"`
	// FoundScore is the score over the slots whose canary the copy has,
	// FoundBound its false-accusation bound; an identity is accused when
	// either bound is within the stated probability.
	FoundScore float64 `json:"found_score"`
	FoundBound float64 `json:"found_bound"`
	Slots      int     `json:"slots"`
	Coverage   float64 `json:"coverage"` // share of the copy's subjects it was served
	Colluders  int     `json:"colluders_tolerated"`
}

// Cover is one identity of the smallest set found explaining the copy.
type Cover struct {
	Facet    string  `json:"facet"`
	Value    string  `json:"value"`
	Subjects int     `json:"subjects"` // of the copy's, served to it
	Share    float64 `json:"share"`
	Added    float64 `json:"added"` // share it adds to those before it
}

type identKey struct {
	facet identify.Facet
	value string
}

// term is one slot of an identity's code: its bias, whether it was shown
// the canary, whether the copy has it.
type term struct {
	p    float64
	x, y bool
}

// Entries is a ledger replayed in time order: a local ledger's Reader, or
// ClickHouse's Accesses through an adapter that keeps its error.
type Entries interface {
	Each(fn func(*ledger.Entry) bool)
}

// Report replays the ledger (nil: coverage and scores are empty) against
// what was read. eps bounds the chance of accusing anyone who did not
// take the copy (0: DefaultFalseAccusation).
func (t *Tracer) Report(led *ledger.Reader, eps float64) *Report {
	if led == nil {
		return t.ReportEntries(nil, eps)
	}
	return t.ReportEntries(led, eps)
}

// ReportEntries is Report over any ledger (nil: none).
func (t *Tracer) ReportEntries(led Entries, eps float64) *Report {
	if eps <= 0 {
		eps = DefaultFalseAccusation
	}
	rep := &Report{Records: t.records, Subjects: int(t.subj.GetCardinality()), CanariesFound: len(t.found),
		CanariesForged: t.rejects, CanaryIDsOnly: t.idsOnly, UsernameOnly: t.names, ContactOnly: t.contact, FalseAccusation: eps, Inputs: t.stats, Accused: []Accused{}, Coverage: []Cover{},
		Named: []Named{}, NamedMin: t.named}
	if led == nil {
		rep.ContactUnmatched = len(t.contacts)
		return rep
	}
	if t.c != nil && len(t.contacts) > 0 {
		cr := t.matchContacts(led, eps)
		if e, ok := led.(interface{ Err() error }); ok && e.Err() != nil {
			// That replay was cut short (a ledger.Reader's or Replay's
			// error): stop here, so the caller still sees the error and
			// gives no report, rather than the next replay clearing it.
			return rep
		}
		for _, k := range cr.found {
			if !t.found[k] {
				t.found[k] = true
				rep.ContactCanaries++
			}
		}
		rep.ContactUnmatched = cr.unmatched
		rep.CanariesFound = len(t.found)
	}
	keys := map[int]bool{}
	for k := range t.found {
		keys[k.key] = true
	}
	// The replay is spread over the cores by identity: each identity's
	// entries go to one worker, in ledger order (a slot's term is the
	// first bucket it was fetched in), and the workers' maps are disjoint.
	// Each gives a new Entry per call, so a worker may keep it.
	type job struct {
		ik identKey
		e  *ledger.Entry
	}
	seed := maphash.MakeSeed()
	reps := make([]*replay, t.workers)
	queues := make([]chan []job, t.workers)
	batch := make([][]job, t.workers)
	var wg sync.WaitGroup
	for w := range reps {
		reps[w] = &replay{t: t, keys: keys, served: map[identKey]*roaring.Bitmap{}, codes: map[identKey]map[string]*term{}, anySrv: roaring.New()}
		queues[w] = make(chan []job, 4)
		wg.Go(func() {
			for js := range queues[w] {
				for _, j := range js {
					reps[w].entry(j.ik, j.e)
				}
			}
		})
	}
	led.Each(func(e *ledger.Entry) bool {
		if len(e.Records) == 0 || e.Status < 200 || e.Status > 299 {
			return true
		}
		var ik identKey
		if t.c != nil {
			ik.facet, ik.value = t.c.IdentityOf(func(f identify.Facet) string { return e.Identity[f-1] })
		} else if e.Identity[identify.FacetAccount-1] != "" {
			ik = identKey{identify.FacetAccount, e.Identity[identify.FacetAccount-1]}
		} else {
			ik = identKey{identify.FacetNet, e.Identity[identify.FacetNet-1]}
		}
		if ik.value == "" {
			return true
		}
		w := int(maphash.String(seed, ik.value) % uint64(t.workers))
		if batch[w] = append(batch[w], job{ik, e}); len(batch[w]) == 256 {
			queues[w] <- batch[w]
			batch[w] = make([]job, 0, 256)
		}
		return true
	})
	for w := range queues {
		queues[w] <- batch[w]
		close(queues[w])
	}
	wg.Wait()
	served, codes, anySrv := reps[0].served, reps[0].codes, reps[0].anySrv
	for _, r := range reps[1:] {
		maps.Copy(served, r.served)
		maps.Copy(codes, r.codes)
		anySrv.Or(r.anySrv)
	}
	rep.Served = share(int(anySrv.GetCardinality()), rep.Subjects)
	rep.Candidates = len(codes)
	logN := math.Log(float64(max(1, 2*len(codes))) / eps)
	type cand struct {
		ik   identKey
		code map[string]*term
		a    *Accused
	}
	cands := make([]cand, 0, len(codes))
	for ik, code := range codes {
		cands = append(cands, cand{ik: ik, code: code})
	}
	// Each candidate's bounds are its own work (a pass over its slots per
	// step of the search): spread over the cores.
	next := make(chan int, len(cands))
	for i := range cands {
		next <- i
	}
	close(next)
	for range t.workers {
		wg.Go(func() {
			for i := range next {
				cands[i].a = accuse(cands[i].ik, cands[i].code, float64(2*len(codes)), eps, logN)
			}
		})
	}
	wg.Wait()
	accused := map[identKey]bool{}
	for _, c := range cands {
		if c.a == nil {
			continue
		}
		accused[c.ik] = true
		if b := served[c.ik]; b != nil {
			c.a.Coverage = share(int(b.GetCardinality()), rep.Subjects)
		}
		rep.Accused = append(rep.Accused, *c.a)
	}
	sort.Slice(rep.Accused, func(i, j int) bool { return rep.Accused[i].Score > rep.Accused[j].Score })
	for _, a := range rep.Accused {
		rep.Colluders = max(rep.Colluders, a.Colluders)
	}
	rep.Coverage, rep.Covered = cover(served, rep.Subjects)
	rep.Named, rep.NamedTotal = name(served, accused, rep.Subjects, t.named)
	return rep
}

// name lists the identities served at least least of the copy's subjects
// (of subjects in all), most first (ties by facet and value), at most
// maxNamed of them, and counts them all.
func name(served map[identKey]*roaring.Bitmap, accused map[identKey]bool, subjects, least int) ([]Named, int) {
	out := []Named{}
	for ik, b := range served {
		if n := int(b.GetCardinality()); n >= least {
			out = append(out, Named{Facet: ik.facet.String(), Value: ik.value, Subjects: n,
				Share: share(n, subjects), Accused: accused[ik]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Subjects != b.Subjects {
			return a.Subjects > b.Subjects
		}
		if a.Facet != b.Facet {
			return a.Facet < b.Facet
		}
		return a.Value < b.Value
	})
	return out[:min(len(out), maxNamed)], len(out)
}

// replay is one worker's part of the ledger's replay: the subjects each
// of its identities was served, and their codes.
type replay struct {
	t      *Tracer
	keys   map[int]bool // the keys whose canaries the copy has
	served map[identKey]*roaring.Bitmap
	codes  map[identKey]map[string]*term
	anySrv *roaring.Bitmap
	ids    []uint32
}

// entry replays one ledger entry of identity ik.
func (r *replay) entry(ik identKey, e *ledger.Entry) {
	t := r.t
	r.ids = r.ids[:0]
	// The people an answer served: its records, or for content (posts,
	// whose records' ids are the posts', not people's: the lab's post 500
	// is profile 5's) the authors it showed.
	people := func(yield func(string) bool) {
		if len(e.Authors) > 0 {
			for _, a := range e.Authors {
				if !yield(a) {
					return
				}
			}
			return
		}
		for _, rec := range e.Records {
			if !yield(rec.ID) {
				return
			}
		}
	}
	for id := range people {
		if v, ok := parseID(bytesOf(id)); ok && v <= math.MaxUint32 && t.subj.Contains(uint32(v)) {
			r.ids = append(r.ids, uint32(v))
		}
	}
	if len(r.ids) > 0 {
		b := r.served[ik]
		if b == nil {
			b = roaring.New()
			r.served[ik] = b
		}
		b.AddMany(r.ids)
		r.anySrv.AddMany(r.ids)
	}
	if t.c == nil || len(r.keys) == 0 || !t.c.Seeds(e.Route) {
		return
	}
	code := r.codes[ik]
	for ki := range r.keys {
		t.c.Plan(ki, e.Route, e.List, ik.value, t.c.Bucket(e.Time), len(e.Records),
			func(i int) []byte { return bytesOf(e.Records[i].ID) },
			func(i int, s canary.Slot, shown bool) {
				y := t.found[canaryKey{ki, s.Canary}]
				anchor, ok := parseID([]byte(e.Records[i].ID))
				inCopy := ok && anchor <= math.MaxUint32 && t.subj.Contains(uint32(anchor))
				if !y && !inCopy {
					return // the copy does not reach this slot
				}
				sk := strconv.Itoa(ki) + "\x00" + e.Route + "\x00" + e.List + "\x00" + e.Records[i].ID
				if code == nil {
					code = map[string]*term{}
					r.codes[ik] = code
				}
				if _, ok := code[sk]; !ok { // the first bucket it was fetched in
					code[sk] = &term{p: s.Bias, x: shown, y: y}
				}
			})
	}
}

// accuse scores one candidate's code; nil when it is not accused. tests
// is how many bounds the trace computes in all (eps is shared among them).
func accuse(ik identKey, code map[string]*term, tests, eps, logN float64) *Accused {
	ts := make([]term, 0, len(code))
	canaries := 0
	for _, tm := range code {
		ts = append(ts, *tm)
		if tm.x && tm.y {
			canaries++
		}
	}
	if canaries == 0 {
		return nil
	}
	// Two tests, each at half the error: the symmetric score over every
	// slot, and the score over the slots whose canary the copy has
	// (Tardos's own), which a fleet keeping only the records all its
	// accounts got cannot push down.
	all := prepare(ts)
	s := score(ts)
	bound := tailBound(all, s) * tests
	var found []term
	for _, tm := range ts {
		if tm.y {
			found = append(found, tm)
		}
	}
	s1 := score(found)
	b1 := tailBound(prepare(found), s1) * tests
	if min(bound, b1) > eps {
		return nil
	}
	return &Accused{Facet: ik.facet.String(), Value: ik.value, Canaries: canaries, Score: round(s), Bound: min(1, bound),
		Threshold: round(threshold(all, eps/tests)), FoundScore: round(s1), FoundBound: min(1, b1),
		Slots: len(ts), Colluders: colluders(len(ts), logN)}
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return round(float64(n) / float64(of))
}

func round(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// cover picks greedily the identities that explain the most of the
// copy's subjects not yet explained, until coverTarget or no gain.
func cover(served map[identKey]*roaring.Bitmap, subjects int) ([]Cover, float64) {
	out := []Cover{}
	if subjects == 0 {
		return out, 0
	}
	got := roaring.New()
	left := make(map[identKey]*roaring.Bitmap, len(served))
	for k, b := range served {
		left[k] = b
	}
	for range 100 {
		if float64(got.GetCardinality()) >= coverTarget*float64(subjects) {
			break
		}
		var best identKey
		gain := uint64(0)
		for k, b := range left {
			g := b.GetCardinality() - b.AndCardinality(got)
			if g > gain || g == gain && g > 0 && (k.value < best.value) {
				best, gain = k, g
			}
		}
		if gain == 0 {
			break
		}
		b := left[best]
		delete(left, best)
		got.Or(b)
		out = append(out, Cover{Facet: best.facet.String(), Value: best.value, Subjects: int(b.GetCardinality()),
			Share: share(int(b.GetCardinality()), subjects), Added: share(int(gain), subjects)})
	}
	return out, share(int(got.GetCardinality()), subjects)
}

// Served lists the canaries an identity was shown (under the signing key),
// with when and in which list.
type ServedCanary struct {
	Time     time.Time `json:"time"`
	Route    string    `json:"route"`
	List     string    `json:"list"` // a search page: "search:" and its query
	ID       string    `json:"id"`
	Username string    `json:"username"`
	Email    string    `json:"email"`
	Phone    string    `json:"phone"`
}

// Served replays the ledger for one identity (facet and value as the code
// is keyed: the most specific facet the requests had).
func Served(c *canary.Canaries, led Entries, facet identify.Facet, value string) []ServedCanary {
	out := []ServedCanary{}
	seen := map[string]bool{}
	led.Each(func(e *ledger.Entry) bool {
		if e.Identity[facet-1] != value || len(e.Records) == 0 || e.Status < 200 || e.Status > 299 || !c.Seeds(e.Route) {
			return true
		}
		f, v := c.IdentityOf(func(f identify.Facet) string { return e.Identity[f-1] })
		if f != facet || v != value {
			return true
		}
		c.Plan(0, e.Route, e.List, value, c.Bucket(e.Time), len(e.Records),
			func(i int) []byte { return bytesOf(e.Records[i].ID) },
			func(i int, s canary.Slot, shown bool) {
				if !shown {
					return
				}
				p := c.Canary(0, s.Canary)
				id := strconv.FormatInt(p.ID, 10)
				if seen[id+e.Route+e.List] {
					return
				}
				seen[id+e.Route+e.List] = true
				out = append(out, ServedCanary{Time: e.Time, Route: e.Route, List: c.ListName(e.List), ID: id, Username: p.Username, Email: p.Email, Phone: p.Phone})
			})
		return true
	})
	return out
}
