package ration

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/refusal"
)

// The gateway's answer stage (gateway.Pipeline.Finish) reads an answer,
// lets a Rationer decide, then rewrites it. rationer composes the same
// steps for rationing's tests, so they state decisions on whole answers.

// Response is an upstream answer, body read whole.
type Response struct {
	Status          int
	ContentType     string
	ContentEncoding string
	Body            []byte
	Dst             []byte
}

// Outcome is what the stage made of an answer.
type Outcome struct {
	Body   []byte // nil: the upstream's answer unchanged
	Masked int
	Block  *refusal.Refusal
	Access inspect.Access
}

type rationer struct {
	*Rationer
	imap *inspect.Map
	im   *inspect.Metrics
}

func newR(cfg Config, icfg inspect.Config, st Store, m *Metrics, log *slog.Logger) (*rationer, error) {
	imap, err := inspect.Compile(icfg)
	if err != nil {
		return nil, err
	}
	r, err := New(cfg, imap, st, m, log)
	if err != nil {
		return nil, err
	}
	return &rationer{Rationer: r, imap: imap, im: inspect.NewMetrics(nil)}, nil
}

func (r *rationer) Match(method, path string) (Route, bool) { return r.imap.Match(method, path) }

// Apply is the answer stage around Decide: on a store error it returns the
// error with the masks made so far (scopes) rewritten into Body.
func (r *rationer) Apply(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, resp Response) (Outcome, error) {
	var out Outcome
	out.Access = inspect.Access{RequestID: req.ID, Route: route.Route.Pattern, Time: now, Identity: *id, List: route.List(), Lookup: route.Lookup()}
	var res inspect.Result
	var scratch []byte
	_, u, _ := r.imap.ReadAnswer(route.Route, resp.Status, resp.ContentType, resp.ContentEncoding, resp.Body, &scratch, &res, r.im)
	if u != inspect.Read {
		if refuse, msg, rule := r.imap.Refused(u); refuse {
			out.Block = &refusal.Refusal{Status: 502, Error: msg, Rule: rule}
		}
		return out, nil
	}
	block, err := r.Decide(ctx, now, id, req, route, &res, &out.Access)
	if block != nil {
		out.Block = block
		res.Fill(&out.Access, false)
		return out, nil
	}
	if n := res.NumMasked(); n > 0 {
		plain := res.Rewrite(nil, req.ID)
		body, eerr := r.imap.Encode(resp.ContentEncoding, plain, resp.Dst[:0])
		if eerr != nil {
			return Outcome{}, errors.Join(err, eerr)
		}
		out.Body, out.Masked = body, n
	}
	res.Fill(&out.Access, true)
	return out, err
}
