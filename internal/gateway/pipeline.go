package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/internal/admit"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store/guard"
)

// Pipeline is one configuration's decision path. A reload builds a new one
// and swaps it in; requests in flight finish on the one they started with.
type Pipeline struct {
	cfg    *config.Config
	ident  *identify.Identifier
	admit  *admit.Admitter
	imap   *inspect.Map
	im     *inspect.Metrics
	ration *ration.Rationer
	// local rations the responders' answers on inspected routes against
	// the same budgets, counting nothing (ration.Uncounted; local.go). Nil
	// without responders.
	local      *ration.Rationer
	responders []Responder
	seeders    []Seeder
	recordings []*Recording
	answers    sync.Pool // *answerWork
	// reuse: every recording is transient, so an Access's box goes back
	// to boxes once recorded (Pipeline.newBox).
	reuse    bool
	boxes    sync.Pool // *accessBox
	upstream *url.URL
	trusted  []netip.Prefix
	log      *slog.Logger
	m        *Metrics
	// lines bounds the "refused" lines of refusals past the edge
	// (refusedLog); a reload starts a new count.
	lines refusedLog
}

// Deps are the process-wide parts a Pipeline is built on.
type Deps struct {
	Store      Store
	Inspect    *inspect.Metrics // nil: counted unregistered
	Ration     *ration.Metrics
	Metrics    *Metrics
	Logger     *slog.Logger
	Responders []Responder  // answer some requests without the upstream
	Seeders    []Seeder     // seed canaries into answers
	Recordings []*Recording // fed every Access
}

// Store is what the request path asks of the state store.
type Store interface {
	admit.Store
	ration.Store
}

// NewPipeline builds the decision path for cfg. ctx bounds background work
// the identifier starts (JWKS refresh); cancel it when the pipeline retires.
func NewPipeline(ctx context.Context, cfg *config.Config, d Deps) (*Pipeline, error) {
	u, err := url.Parse(cfg.Upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("gateway: upstream url: %w", err)
	}
	ident, err := identify.New(ctx, cfg.Identity, identify.Options{Logger: d.Logger})
	if err != nil {
		return nil, fmt.Errorf("gateway: identity: %w", err)
	}
	adm, err := admit.New(cfg.Limits, cfg.Allow, d.Store, d.Ration.Shadow(), d.Logger)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	imap, err := inspect.Compile(cfg.Inspect)
	if err != nil {
		return nil, fmt.Errorf("gateway: inspect: %w", err)
	}
	rat, err := ration.New(cfg.Ration, imap, d.Store, d.Ration, d.Logger)
	if err != nil {
		return nil, fmt.Errorf("gateway: ration: %w", err)
	}
	var local *ration.Rationer
	if len(d.Responders) > 0 {
		// Metrics of its own, unregistered: a canary is no real subject,
		// so the budgets' served and masked counts never include one.
		if local, err = ration.New(cfg.Ration, imap, ration.Uncounted(d.Store), nil, d.Logger); err != nil {
			return nil, fmt.Errorf("gateway: ration of local answers: %w", err)
		}
	}
	if d.Inspect == nil {
		d.Inspect = inspect.NewMetrics(nil)
	}
	p := &Pipeline{cfg: cfg, ident: ident, admit: adm, imap: imap, im: d.Inspect, ration: rat, local: local,
		responders: d.Responders, seeders: d.Seeders, recordings: d.Recordings, upstream: u, log: d.Logger, m: d.Metrics}
	p.answers.New = func() any { return new(answerWork) }
	p.boxes.New = func() any { return new(accessBox) }
	p.reuse = len(p.recordings) > 0
	for _, rc := range p.recordings {
		p.reuse = p.reuse && rc.transient
	}
	for _, s := range cfg.Identity.TrustedProxies {
		pf, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("gateway: trusted_proxies: %w", err)
		}
		p.trusted = append(p.trusted, pf)
	}
	return p, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if pf, err := netip.ParsePrefix(s); err == nil {
		return pf.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Admitter exposes the limits for the admin API's facet state.
func (p *Pipeline) Admitter() *admit.Admitter { return p.admit }

func (p *Pipeline) trustedPeer(a netip.Addr) bool {
	a = a.Unmap()
	for _, pf := range p.trusted {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// Exchange is one request's state across the pipeline, in warden's types.
type Exchange struct {
	ID       string
	Start    time.Time
	Method   string
	Path     string
	RawQuery string
	Identity identify.Identity
	Route    inspect.Match
	Inspect  bool // the answer is buffered and rationed
	// Local, when Begin sets it, is warden's own answer to the request:
	// the front sends it and never asks the upstream.
	Local *Local
	// p is the pipeline Begin ran, which finishes the exchange (a reload
	// may have swapped in another meanwhile).
	p *Pipeline
	// Strip holds the credentials the request goes upstream without:
	// those warden could not verify, under the strip policy.
	Strip identify.Credential
	// recorded: the exchange's Access was handed to the recorders
	// (Pipeline.record), so a panic recovered later records none of its
	// own; one recovered before the hand-off records the 500.
	recorded bool
}

// Refusal is an answer warden sends in place of the upstream's: one type
// for the gateway, admission and rationing.
type Refusal = refusal.Refusal

// Responder answers some requests itself, without the upstream (the
// canary package answers every route about a canary profile from its
// key): the hook of Begin, asked once the request is admitted. It returns
// nil for a request it does not answer.
type Responder interface {
	Respond(ctx context.Context, ex *Exchange) *Local
}

// Local is a JSON answer warden makes itself.
type Local struct {
	Status int
	Body   []byte   // JSON
	Header []Header // response headers to set (Warden-Masked)
}

// Begin is the request stage, in its order: route, identify, refuse
// credentials that cannot be verified, admit (bans, rate limits), then
// the responders. A nil result admits the request: to the upstream, or,
// with ex.Local set, to warden's own answer. A responder's answer on an
// inspected route is rationed as the upstream's would be (finishLocal):
// masked in ex.Local, or refused.
func (p *Pipeline) Begin(ctx context.Context, ex *Exchange, in *identify.Input) *Refusal {
	ex.p = p
	ex.Route, ex.Inspect = p.imap.Match(ex.Method, ex.Path)
	p.ident.Identify(ex.Start, in, &ex.Identity)
	if h := ex.Identity.Ambiguous; h != "" {
		facet := "app" // whose header came twice, named as the unverified credentials' refusals name it
		if h == p.ident.Header(identify.CredentialAccount) {
			facet = "account"
		}
		return p.refused(ex, p.refuse(ex, &Refusal{Status: 400, Rule: refusal.RuleIdentity, Facet: facet, Error: "more than one " + h + " header"}, nil))
	}
	if ex.Identity.Unverified != 0 {
		if r := p.unverified(ex); r != nil {
			return p.refused(ex, r)
		}
	}
	if r := p.admitted(ctx, ex); r != nil {
		return p.refused(ex, r)
	}
	for _, rs := range p.responders {
		if ex.Local = rs.Respond(ctx, ex); ex.Local != nil {
			if ex.Inspect {
				return p.finishLocal(ctx, ex)
			}
			break
		}
	}
	return nil
}

// storeFailed counts a decision of stage ("admit", "ration": refusal.StoreAdmit,
// refusal.StoreRation) the state store failed, and returns the 503 it
// calls for, or nil when the store's failure policy failed open (the
// request goes on: at rationing, with the masks that need no store). The
// stage is the refusal's facet, in its body and the ledger: explain
// leaves a failed admission out of the rate limits' counts (no limit was
// spent), and cannot tell it from a failed rationing otherwise.
func (p *Pipeline) storeFailed(ex *Exchange, stage string, err error) *Refusal {
	if errors.Is(err, guard.ErrFailedOpen) {
		p.m.storeFail.WithLabelValues(stage, "failed_open").Inc()
		return nil
	}
	p.m.storeFail.WithLabelValues(stage, "refused").Inc()
	return p.refuse(ex, &Refusal{Status: 503, Rule: refusal.RuleStore, Facet: stage, Error: "state store unavailable"}, err)
}

// rewriteFailed is the 502 for an answer whose masks or insertions could
// not be encoded: it is never sent unmasked.
func (p *Pipeline) rewriteFailed(ex *Exchange, err error) *Refusal {
	return p.refuse(ex, &Refusal{Status: 502, Rule: refusal.RuleRewrite, Error: "answer could not be rewritten"}, err)
}

// admitted applies bans and rate limits; nil admits.
func (p *Pipeline) admitted(ctx context.Context, ex *Exchange) *Refusal {
	d, err := p.admit.Admit(ctx, ex.Start, &ex.Identity, ex.Method, ex.Path, ex.ID)
	switch {
	case err != nil:
		if r := p.storeFailed(ex, refusal.StoreAdmit, err); r != nil {
			return r
		}
	case !d.Admitted():
		msg := "rate limited"
		if d.Status == 403 {
			msg = "banned"
		}
		return p.refuse(ex, &Refusal{Status: d.Status, Rule: d.Rule, Facet: d.Facet, Error: msg,
			RetryAfter: d.RetryAfter, Policy: d.Policy, State: d.State}, nil)
	}
	return nil
}

// refused records the Access of a request refused before the upstream
// was asked: the recorders see what was refused and why.
func (p *Pipeline) refused(ex *Exchange, ref *Refusal) *Refusal {
	if len(p.recordings) == 0 {
		return ref
	}
	return p.record(ex, p.bare(ex, ex.Start), ref)
}

// failed records the Access of a request whose upstream failed (rule
// "upstream"): the recorders see that nothing was served. On a route the
// map does not inspect too (route ""): the answer's body names the request
// id and the rule, and `warden explain` finds them. Its time is the
// request's admission, as every Access's (Finish).
func failed(ex *Exchange, status int) {
	p := ex.p
	if p == nil || len(p.recordings) == 0 {
		return
	}
	p.record(ex, p.bare(ex, ex.Start), &Refusal{Status: status, Rule: refusal.RuleUpstream})
}

// bare is the box of the Access of a request that served nothing, the
// recorders' own.
func (p *Pipeline) bare(ex *Exchange, now time.Time) *accessBox {
	box := p.newBox()
	box.acc = inspect.Access{RequestID: ex.ID, Time: now, Identity: ex.Identity}
	if ex.Route.Route != nil {
		// The parameters alias the front's buffers.
		box.acc.Route, box.acc.List, box.acc.Lookup = ex.Route.Route.Pattern, box.keep(ex.Route.List()), box.keep(ex.Route.Lookup())
	}
	return box
}

// headerChallenge is a 401's WWW-Authenticate for a credential carried
// in a header of its own (an app key, an account token not in
// Authorization): RFC 9110 wants a challenge on every 401, and no
// registered scheme fits, so it names its scheme and the header, as API
// gateways do (ApiKey header="X-App-Key").
func headerChallenge(scheme, header string) string {
	return scheme + ` header="` + header + `"`
}

// unverified applies the credential policies to a request carrying a
// credential warden could not verify: a refusal, or the credentials to
// strip noted in ex. Never nothing: an upstream whose parser accepts what
// warden's refused would serve an identity warden never counted or banned.
func (p *Pipeline) unverified(ex *Exchange) *Refusal {
	id := &ex.Identity
	if id.Unverified&identify.CredentialAccount != 0 {
		if p.ident.Policy(identify.CredentialAccount) == identify.Strip {
			ex.Strip |= identify.CredentialAccount
			p.m.unverified.WithLabelValues("account", id.UnverifiedWhy, "stripped").Inc()
		} else {
			p.m.unverified.WithLabelValues("account", id.UnverifiedWhy, "refused").Inc()
			r := &Refusal{Status: 401, Rule: refusal.RuleIdentity, Facet: "account", Error: "account credential not verified: " + id.UnverifiedWhy}
			r.Challenge = `Bearer error="invalid_token"`
			if !p.ident.Bearer() {
				r.Challenge = headerChallenge("Token", p.ident.Header(identify.CredentialAccount))
			}
			return p.refuse(ex, r, nil)
		}
	}
	if id.Unverified&identify.CredentialApp != 0 {
		if p.ident.Policy(identify.CredentialApp) == identify.Strip {
			ex.Strip |= identify.CredentialApp
			p.m.unverified.WithLabelValues("app", "unregistered", "stripped").Inc()
		} else {
			p.m.unverified.WithLabelValues("app", "unregistered", "refused").Inc()
			return p.refuse(ex, &Refusal{Status: 401, Rule: refusal.RuleIdentity, Facet: "app", Error: "app key not registered",
				Challenge: headerChallenge("ApiKey", p.ident.Header(identify.CredentialApp))}, nil)
		}
	}
	return nil
}

// stripCredentials removes the credential headers ex.Strip names from the
// request going upstream.
func (p *Pipeline) stripCredentials(h forwardHeader, ex *Exchange) {
	for _, c := range [...]identify.Credential{identify.CredentialAccount, identify.CredentialApp} {
		if ex.Strip&c != 0 {
			h.del(p.ident.Header(c))
		}
	}
}

func (p *Pipeline) refuse(ex *Exchange, r *Refusal, cause error) *Refusal {
	p.m.refusals.WithLabelValues(r.Rule, r.Facet).Inc()
	p.lines.write(p.log, ex, r, cause)
	return r
}

// refusedAttrs are the fields of a "refused" line: r's, and ex's id,
// method and path (without its query) when ex is known.
func refusedAttrs(ex *Exchange, r *Refusal) []slog.Attr {
	var id, method, path string
	if ex != nil {
		id, method, path = ex.ID, ex.Method, ex.Path
	}
	return []slog.Attr{slog.String("request_id", id), slog.Int("status", r.Status), slog.String("rule", r.Rule),
		slog.String("facet", r.Facet), slog.String("method", method), slog.String("path", path)}
}

// ids makes request ids: a random per-process prefix and a counter, cheap
// and unique without a syscall per request.
type ids struct {
	prefix [8]byte
	n      atomic.Uint64
}

func newIDs() *ids {
	var x ids
	var b [4]byte
	_, _ = rand.Read(b[:])
	hex.Encode(x.prefix[:], b[:])
	return &x
}

func (x *ids) next() string {
	var buf [8 + 16]byte
	copy(buf[:], x.prefix[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], x.n.Add(1))
	hex.Encode(buf[8:], n[:])
	return string(buf[:])
}

// Config is the configuration this pipeline was built from.
func (p *Pipeline) Config() *config.Config { return p.cfg }
