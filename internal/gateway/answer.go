package gateway

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/warden-gw/warden/internal/cacheline"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
)

// Answer is the upstream's answer on an inspected route, body read whole.
type Answer struct {
	Status          int
	ContentType     string
	ContentEncoding string
	Body            []byte
	// Dst, when not nil, is memory the rewritten body may be built in (the
	// outcome's Body then shares it); it must not overlap Body.
	Dst []byte
}

// Outcome is what Finish made of an answer.
type Outcome struct {
	// Body is the rewritten answer, encoded as the upstream's was; nil
	// sends the upstream's answer unchanged, byte for byte.
	Body   []byte
	Masked int      // records with a class masked
	Header []Header // response headers to set
}

// Header is a response header field to set.
type Header struct{ Name, Value string }

// Seeder inserts canary records into answers (the hook where the canary
// package plugs in, cmd/warden/serve_canary.go): called after rationing,
// before the rewrite, on every answer that goes out. It adds values with
// res.Insert, which are never records of res: no budget counts them and
// the Access does not list them. The ids they show (the route's links
// read in them) are then linked in the identity's link memory as the
// answer's own are (linkCanaries), so their look-ups are decided as those
// of real records shown beside them.
type Seeder interface {
	Seed(ex *Exchange, res *inspect.Result, acc *inspect.Access)
}

// answerWork is one answer's scratch memory, pooled.
type answerWork struct {
	res   inspect.Result
	links [][]byte       // canary ids to link (linkCanaries)
	acc   inspect.Access // the Access when no recorder takes it
	plain []byte         // a decoded body
	out   []byte         // a rewritten body before encoding
	hdr   []byte         // the Warden-Masked value being built
}

// Finish is the answer stage of an inspected route, in its order: read
// (decode and inspect), ration decides, canaries are seeded, the answer is
// rewritten and encoded, and the Access it yields goes to the recorders.
// It returns the outcome, or a refusal that replaces the answer.
//
// Every decision on the request is at one instant, ex.Start, when its
// rate limits were decided (Begin), and the Access carries it: a refusal's
// Access carries the same, so the ledger orders a request's admission
// among the others as admission did (warden replay decides the limits
// again in that order; with the time the answer was read, an admitted
// request still waiting for its answer came after requests refused
// meanwhile, and swapped places with them). No clock is read here.
func (p *Pipeline) Finish(ctx context.Context, ex *Exchange, resp Answer) (Outcome, *Refusal) {
	now := ex.Start
	var out Outcome
	w := p.answers.Get().(*answerWork)
	defer p.answers.Put(w)
	// The box is taken first and its lines prefetched, then filled once
	// the answer is read: a pooled box was last written on the recording's
	// core, and its first load missed there (warden bench row e-ledger
	// under perf: 70% of access's own time on that one load).
	box := p.newBox()
	box.prefetch()
	w.res.Reset()
	var unread inspect.Unread
	var err error
	if ex.Method == "HEAD" {
		// The route's GET pattern matches HEAD too; its answer has the
		// header alone. Read as JSON, that empty body was malformed: 502
		// under on_malformed: refuse, a warning and a count under pass.
		unread = p.imap.SkipNoBody(p.im)
	} else {
		_, unread, err = p.imap.ReadAnswer(ex.Route.Route, resp.Status, resp.ContentType, resp.ContentEncoding, resp.Body, &w.plain, &w.res, p.im)
	}
	acc, spare := p.access(ex, now, &w.acc, box)
	acc.Status = resp.Status
	if unread != inspect.Read {
		return out, p.record(ex, box, p.unread(ctx, ex, unread, err))
	}
	ref, err := p.ration.Decide(ctx, now, &ex.Identity, ex.rationRequest(), ex.Route, &w.res, acc)
	if err != nil {
		if r := p.storeFailed(ex, "ration", err); r != nil {
			return out, p.record(ex, box, r)
		}
	}
	if ref != nil {
		// Counted and logged as every refusal of a rule is: a "refused"
		// line within refusedLog's bound (a harvester retrying a budget's
		// 429 at once wrote a "blocked" line per request, unbounded).
		p.refuse(ex, ref, nil)
		p.fill(&w.res, acc, false, inspect.Spare{})
		return out, p.record(ex, box, ref)
	}
	for _, s := range p.seeders {
		s.Seed(ex, &w.res, acc)
	}
	if w.res.NumInserted() > 0 {
		w.links = w.res.InsertedLinks(w.links[:0])
		p.linkCanaries(ctx, ex, now, w)
	}
	if err := p.rewrite(w, ex, resp, &out); err != nil {
		// A rewrite that cannot be encoded is never sent unmasked.
		return Outcome{}, p.record(ex, box, p.rewriteFailed(ex, err))
	}
	p.fill(&w.res, acc, true, spare)
	p.record(ex, box, nil)
	return out, nil
}

// linkCanaries links the canary ids in w.links (those the seeders
// inserted into an answer, or a canary's own list shows) in the
// identity's link memory, as Decide links an answer's own ids: a canary
// shown in a list is then referenced for that identity, and one never
// shown unreferenced, exactly as a real record (else an account past its
// unreferenced budget looking up another's take sees real profiles
// masked and canaries not). Only answers carrying canaries pay this Link
// call. A failure is logged, not fatal (as Decide's Link): the canaries'
// later look-ups then count as unreferenced.
func (p *Pipeline) linkCanaries(ctx context.Context, ex *Exchange, now time.Time, w *answerWork) {
	err := p.ration.LinkCanaries(ctx, now, &ex.Identity, ex.rationRequest(), ex.Route, w.links)
	clear(w.links) // no pointer into this answer kept alive in the pool
	if err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "canary: link failed", slog.String("request_id", ex.ID), slog.Any("err", err))
	}
}

// access starts the Access an inspected answer yields, in box (newBox's).
// Without recorders nothing keeps it: box is nil and the Access is
// scratch, the pooled one, nothing copied. With recorders it is the
// recorders' own, in memory no later request reuses while a recorder has
// it (the route's parameters alias the front's buffers): a box with room
// (spare, for fill) for a look-up's record, the rules that masked it and
// the ids' bytes, so the common answer, a profile by id, costs one box
// where it cost six allocations, and none when the pipeline reuses boxes
// (every recorder Transient). Every recorder shares it.
func (p *Pipeline) access(ex *Exchange, now time.Time, scratch *inspect.Access, box *accessBox) (*inspect.Access, inspect.Spare) {
	if box == nil {
		*scratch = inspect.Access{}
		return scratch, inspect.Spare{}
	}
	box.acc = inspect.Access{RequestID: ex.ID, Route: ex.Route.Route.Pattern, Time: now, Identity: ex.Identity,
		List: box.keep(ex.Route.List()), Lookup: box.keep(ex.Route.Lookup())}
	if c := ex.Route.Route.Config().Cursor; c != "" {
		box.acc.Page = inspect.QueryValue(ex.RawQuery, c)
	}
	return &box.acc, inspect.Spare{Records: box.rec[:0], Rules: box.rules[:0], Text: box.text[box.used:box.used]}
}

// accessBox is an Access with room for what a look-up adds to it.
type accessBox struct {
	acc   inspect.Access
	rec   [1]inspect.Record
	rules [2]string
	text  [40]byte // the parameters' copies, then the ids' bytes (Spare.Text)
	used  int      // of text, by the parameters
	// pool, when set, takes the box back once the last of refs
	// recordings released it (the pipeline's boxes: set by Pipeline.record).
	pool *sync.Pool
	refs atomic.Int32
}

// newBox is an empty box (nil without recordings): a reused one when
// every recording is transient, a new one otherwise (a recorder keeps
// the Access or its strings, so its memory is never written again). It
// does not touch a reused box's memory, so that Finish can prefetch it
// before the first write waits for it (record marks it the pool's).
func (p *Pipeline) newBox() *accessBox {
	if len(p.recordings) == 0 {
		return nil
	}
	if !p.reuse {
		return new(accessBox)
	}
	return p.boxes.Get().(*accessBox)
}

// prefetch starts loading every cache line of the box (nil: none), so
// that filling it after the answer is read finds them arrived.
func (b *accessBox) prefetch() {
	if b == nil {
		return
	}
	cacheline.Range(unsafe.Pointer(b), unsafe.Sizeof(*b))
}

// release is one recording done with the box: the last one empties it
// (no pointer kept alive from the pool) and puts it back. A nil box, or
// one not reused, is left alone.
func (b *accessBox) release() {
	if b == nil || b.pool == nil || b.refs.Add(-1) > 0 {
		return
	}
	pool := b.pool
	*b = accessBox{}
	pool.Put(b)
}

// keep copies s into the box's text while it has room (a copy of its own
// otherwise). The box is never written again once handed over, so the
// string is immutable as Go requires.
func (b *accessBox) keep(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > len(b.text)-b.used {
		return strings.Clone(s)
	}
	t := b.text[b.used : b.used+len(s)]
	copy(t, s)
	b.used += len(s)
	return unsafe.String(&t[0], len(t))
}

// fill copies what the answer served into acc, for the recorders only, in
// spare what fits there.
func (p *Pipeline) fill(res *inspect.Result, acc *inspect.Access, served bool, spare inspect.Spare) {
	if len(p.recordings) > 0 {
		res.FillSpare(acc, served, spare)
	}
}

// unread answers an answer inspection could not read: passed as it came,
// or refused (502) where the map's policy says so.
func (p *Pipeline) unread(ctx context.Context, ex *Exchange, u inspect.Unread, err error) *Refusal {
	refuse, msg, rule := p.imap.Refused(u)
	if u == inspect.Oversize || u == inspect.Malformed || u == inspect.OtherType {
		attrs := []slog.Attr{slog.String("request_id", ex.ID), slog.String("route", ex.Route.Route.Pattern), slog.String("reason", u.String())}
		if err != nil {
			attrs = append(attrs, slog.Any("err", err))
		}
		p.log.LogAttrs(ctx, slog.LevelWarn, "inspect: answer not read", attrs...)
	}
	if !refuse {
		return nil
	}
	return p.refuse(ex, &Refusal{Status: 502, Rule: rule, Error: msg}, nil)
}

// rewrite renders the masks and insertions made so far into out: the
// body, encoded as the upstream's was, and with masks the Warden-Masked
// header. Without either out stays empty (the upstream's bytes go out).
func (p *Pipeline) rewrite(w *answerWork, ex *Exchange, resp Answer, out *Outcome) error {
	res := &w.res
	if res.NumMasked() == 0 && res.NumInserted() == 0 {
		return nil
	}
	var body []byte
	if inspect.Identity(resp.ContentEncoding) {
		body = res.Rewrite(resp.Dst[:0], ex.ID) // straight into the caller's memory: no copy to encode
	} else if w.out = res.Rewrite(w.out, ex.ID); w.out != nil {
		var err error
		if body, err = p.imap.Encode(resp.ContentEncoding, w.out, resp.Dst[:0]); err != nil {
			return err
		}
	}
	if body == nil {
		return nil
	}
	out.Body, out.Masked = body, res.NumMasked()
	if out.Masked == 0 {
		return nil
	}
	out.Header = append(out.Header, Header{Name: inspect.MaskedHeader, Value: maskedValue(&w.hdr, out.Masked, res.Rules())})
	if p.log.Enabled(context.Background(), slog.LevelInfo) { // the attributes cost allocations
		p.log.LogAttrs(context.Background(), slog.LevelInfo, "masked", slog.String("request_id", ex.ID),
			slog.Int("masked", out.Masked), slog.String("route", ex.Route.Route.Pattern), slog.String("decision", out.Header[len(out.Header)-1].Value))
	}
	return nil
}

// maskedValue renders the Warden-Masked header value, "N; rules=a,b", in
// scratch memory and allocates only the string.
func maskedValue(scratch *[]byte, n int, rules []string) string {
	b := strconv.AppendInt((*scratch)[:0], int64(n), 10)
	b = append(b, "; rules="...)
	for i, r := range rules {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	*scratch = b
	return string(b)
}

// rationRequest is what rationing reads of the request.
func (ex *Exchange) rationRequest() ration.Request {
	return ration.Request{Method: ex.Method, Path: ex.Path, RawQuery: ex.RawQuery, ID: ex.ID}
}
