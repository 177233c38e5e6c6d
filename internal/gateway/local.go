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
// not spent (p.local is built on ration.Uncounted), nothing is linked, no
// seeder runs and no Access is recorded (a canary is never a real
// subject: package canary). The ids a canary's list shows are linked as
// a real list's (linkCanaries); the link memory is read as for a real
// look-up (a canary is linked where it was shown), and the
// fan-out cap counts the open, as a real one's (package canary's
// exception). Only requests a responder
// answered come here, so every other request pays nothing for it.
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
	const ctype = "application/json" // what writeLocal sends
	_, unread, err := p.imap.ReadAnswer(ex.Route.Route, l.Status, ctype, "", l.Body, &w.plain, &w.res, p.im)
	if unread != inspect.Read {
		return localRefused(ex, p.unread(ctx, ex, unread, err))
	}
	ref, err := p.local.Decide(ctx, ex.Start, &ex.Identity, ex.rationRequest(), ex.Route, &w.res, &w.acc)
	if err != nil {
		if r := p.storeFailed(ex, "ration", err); r != nil {
			return localRefused(ex, r)
		}
	}
	if ref != nil {
		p.blocked(ctx, ex, ref)
		return localRefused(ex, ref)
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
		return localRefused(ex, p.rewriteFailed(ex, err))
	}
	if out.Body != nil {
		l.Body, l.Header = out.Body, out.Header
	}
	return nil
}

// localRefused drops ex.Local for r, when r refuses.
func localRefused(ex *Exchange, r *Refusal) *Refusal {
	if r != nil {
		ex.Local = nil
	}
	return r
}
