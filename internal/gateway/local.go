package gateway

import (
	"context"

	"github.com/warden-gw/warden/internal/inspect"
)

// finishLocal is the answer stage for a responder's answer (ex.Local) on
// an inspected route: read, ration, rewrite, as Finish does an upstream's,
// so a canary profile is masked, or refused, exactly when a real one
// would be. Were it not, one account past its budget would tell every
// canary of a harvested list apart by what comes back unmasked, and drop
// them before the copy leaks.
//
// Unlike Finish it counts nothing against a budget: the budgets are read,
// not spent (p.local is built on ration.Uncounted), nothing is linked and
// no seeder runs. The ids a canary's list shows are linked as a real
// list's (linkCanaries); the link memory is read as for a real look-up
// (a canary is linked where it was shown), and the fan-out cap counts the
// open, as a real one's (package canary's exception). Only requests a
// responder answered come here, so every other request pays nothing for
// it.
//
// Its Access is recorded as a real request's is (localBox): who asked,
// the route, the status, a refusal's rule and facet, the rules that
// masked; so every refusal's request id leads to warden explain, as the
// invariant asks. It names no canary: no records, authors, links, list,
// page or look-up (a canary is never a real subject: package canary), so
// the ledger's subjects, who-took, took-by's subjects and lists, and reach
// are what real traffic alone makes them.
//
// It returns a refusal that replaces the answer (ex.Local is then nil),
// or nil with ex.Local rewritten where a rule masked.
func (p *Pipeline) finishLocal(ctx context.Context, ex *Exchange) *Refusal {
	l := ex.Local
	if p.local == nil || ex.Route.Route == nil {
		return nil
	}
	w := p.answers.Get().(*answerWork)
	defer p.answers.Put(w)
	w.res.Reset()
	w.acc = inspect.Access{}
	box := p.localBox(ex)
	const ctype = "application/json" // what writeLocal sends
	_, unread, err := p.imap.ReadAnswer(ex.Route.Route, l.Status, ctype, "", l.Body, &w.plain, &w.res, p.im)
	if unread != inspect.Read {
		return p.localRefused(ex, box, p.unread(ctx, ex, unread, err))
	}
	ref, err := p.local.Decide(ctx, ex.Start, &ex.Identity, ex.rationRequest(), ex.Route, &w.res, &w.acc)
	if err != nil {
		if r := p.storeFailed(ex, "ration", err); r != nil {
			return p.localRefused(ex, box, r)
		}
	}
	if ref != nil {
		p.refuse(ex, ref, nil) // as Finish's
		return p.localRefused(ex, box, ref)
	}
	// The ids the answer shows (a canary's followers: canaries) are
	// linked as a real list's are, else a look-up of one would be
	// unreferenced where one from a real profile's list is not.
	if w.res.NumLinks() > 0 {
		w.links = w.links[:0]
		for i := 0; i < w.res.NumLinks(); i++ {
			w.links = append(w.links, w.res.Link(i))
		}
		p.linkCanaries(ctx, ex, ex.Start, w)
	}
	var out Outcome
	// Dst nil: the rewrite gets memory of its own, which ex.Local keeps
	// after w goes back to the pool.
	if err := p.rewrite(w, ex, Answer{Status: l.Status, ContentType: ctype, Body: l.Body}, &out); err != nil {
		return p.localRefused(ex, box, p.rewriteFailed(ex, err))
	}
	if out.Body != nil {
		l.Body, l.Header = out.Body, out.Header
	}
	if box != nil {
		box.acc.Status = l.Status
		box.acc.AgeRank = w.acc.AgeRank
		if rules := w.res.Rules(); len(rules) > 0 && w.res.NumMasked() > 0 {
			box.acc.MaskRules = append(box.rules[:0], rules...) // the rules' names outlive w
		}
	}
	p.record(ex, box, nil)
	return nil
}

// localBox is the box of the Access of a request a responder answered
// (nil without recordings): who asked, when, on which route, and nothing
// the answer names.
func (p *Pipeline) localBox(ex *Exchange) *accessBox {
	box := p.newBox()
	if box != nil {
		box.acc = inspect.Access{RequestID: ex.ID, Route: ex.Route.Route.Pattern, Time: ex.Start, Identity: ex.Identity}
	}
	return box
}

// localRefused records ex's Access (box, its status, rule and facet r's)
// and drops ex.Local for r, when r refuses; a nil r (an unread answer
// passed as it came) is recorded as the responder's status.
func (p *Pipeline) localRefused(ex *Exchange, box *accessBox, r *Refusal) *Refusal {
	if r != nil {
		ex.Local = nil
	} else if box != nil {
		box.acc.Status = ex.Local.Status
	}
	return p.record(ex, box, r)
}
