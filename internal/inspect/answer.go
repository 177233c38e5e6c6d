package inspect

import (
	"errors"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/refusal"
)

// Metrics count the answers on mapped routes that inspection did not read.
// Create them once per process; every Map built on a config load shares
// them.
type Metrics struct {
	oversize  prometheus.Counter
	malformed prometheus.Counter
	skipped   *prometheus.CounterVec // by reason
}

// NewMetrics registers inspection's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		oversize: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_inspect_oversize_total",
			Help: "Answers larger than max_body (passed or refused per on_oversize).",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_inspect_malformed_total",
			Help: "Answers that were not valid JSON or could not be decoded (passed or refused per on_malformed).",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_inspect_skipped_total",
			Help: "Answers on mapped routes not inspected, by reason (status, content_type, no_body: an answer to HEAD); under on_other_type: refuse a content_type one is refused (502). An encoding other than gzip and deflate counts as malformed: warden asks the upstream for those only.",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.oversize, m.malformed, m.skipped)
	}
	return m
}

// Unread says why an answer on a mapped route was not inspected.
type Unread uint8

const (
	Read      Unread = iota // inspected
	Status                  // not a 2xx: nothing to ration
	OtherType               // a body that is not JSON
	Oversize                // decoded past max_body
	Malformed               // an encoding or JSON warden cannot read
	Empty                   // not JSON, but no body either: nothing to read
	NoBody                  // an answer to HEAD: no body, as HTTP defines it
)

func (u Unread) String() string {
	return [...]string{"read", "status", "content_type", "oversize", "malformed", "empty", "no_body"}[u]
}

// Refused reports whether the map's policy refuses an answer left unread
// for u (on_other_type, on_oversize, on_malformed: refuse), and the
// refusal's message and rule.
func (m *Map) Refused(u Unread) (refuse bool, msg, rule string) {
	switch u {
	case OtherType:
		return m.cfg.OnOtherType == Refuse, "upstream answer not JSON", refusal.RuleOtherType
	case Oversize:
		return m.cfg.OnOversize == Refuse, "upstream answer too large", refusal.RuleMaxBody
	case Malformed:
		return m.cfg.OnMalformed == Refuse, "malformed upstream answer", refusal.RuleMalformed
	}
	return false, "", ""
}

// SkipNoBody counts an answer to a HEAD request as not inspected and
// returns NoBody: it has no body by definition (RFC 9110 9.3.2), so its
// empty one is not malformed JSON, and nothing in it is served.
func (m *Map) SkipNoBody(met *Metrics) Unread {
	met.skipped.WithLabelValues("no_body").Inc()
	return NoBody
}

// ReadAnswer decodes an answer on route and inspects it into res: the
// first step of the answer stage. plain is the decoded body (body itself
// when not encoded, else built in *scratch, which keeps the memory for the
// next answer). u says why the answer was not read, err what went wrong
// for a malformed one; both are counted in met.
func (m *Map) ReadAnswer(route *Route, status int, contentType, contentEncoding string, body []byte, scratch *[]byte,
	res *Result, met *Metrics) (plain []byte, u Unread, err error) {
	if status < 200 || status > 299 {
		met.skipped.WithLabelValues("status").Inc()
		return nil, Status, nil
	}
	if !JSON(contentType) {
		met.skipped.WithLabelValues("content_type").Inc()
		if len(body) == 0 {
			return nil, Empty, nil
		}
		return nil, OtherType, nil
	}
	plain, err = m.Decode(contentEncoding, body, *scratch)
	switch {
	case errors.Is(err, ErrOversize):
		met.oversize.Inc()
		return nil, Oversize, err
	case err != nil:
		met.malformed.Inc()
		return nil, Malformed, err
	}
	if len(plain) > 0 && (len(body) == 0 || &plain[0] != &body[0]) {
		*scratch = plain[:0] // a decoded copy: keep its memory for the next answer
	}
	if err := res.Inspect(route, plain); err != nil {
		met.malformed.Inc()
		return nil, Malformed, err
	}
	return plain, Read, nil
}

// Fill copies what res found into acc, in memory acc owns (res is pooled
// and reused): the route's classes always; records, authors and links only
// when the answer was served (not blocked).
func (r *Result) Fill(acc *Access, served bool) { r.FillSpare(acc, served, Spare{}) }

// Spare is memory made with an Access (in the same allocation) that
// FillSpare uses for what fits in it, so a small answer's Access costs
// no allocation more. Each part is used whole or not at all, and never
// written again once acc is handed over.
type Spare struct {
	Records []Record // capacity for the records
	Rules   []string // capacity for the rules that masked
	Text    []byte   // capacity for the ids' bytes
}

// FillSpare is Fill using sp where what it copies fits.
func (r *Result) FillSpare(acc *Access, served bool, sp Spare) {
	acc.Classes = r.Route().Classes()
	if !served {
		return
	}
	size := 0
	n := r.Len()
	for i := 0; i < n; i++ {
		size += len(r.ID(i))
	}
	for i := 0; i < r.NumAuthors(); i++ {
		size += len(r.Author(i))
	}
	for i := 0; i < r.NumLinks(); i++ {
		size += len(r.Link(i))
	}
	buf := sp.Text[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	for i := 0; i < n; i++ {
		buf = append(buf, r.ID(i)...)
	}
	for i := 0; i < r.NumAuthors(); i++ {
		buf = append(buf, r.Author(i)...)
	}
	for i := 0; i < r.NumLinks(); i++ {
		buf = append(buf, r.Link(i)...)
	}
	s := unsafe.String(unsafe.SliceData(buf), len(buf)) // one allocation (or sp's), never written again
	pos := 0
	take := func(k int) string { v := s[pos : pos+k]; pos += k; return v }
	if n > 0 {
		if cap(sp.Records) >= n {
			acc.Records = sp.Records[:n]
		} else {
			acc.Records = make([]Record, n)
		}
		for i := range acc.Records {
			acc.Records[i] = Record{ID: take(len(r.ID(i))), Classes: r.Classes(i), Masked: r.Masked(i)}
		}
	}
	if k := r.NumAuthors(); k > 0 {
		acc.Authors = make([]string, k)
		for i := range acc.Authors {
			acc.Authors[i] = take(len(r.Author(i)))
		}
	}
	if k := r.NumLinks(); k > 0 {
		acc.Links = make([]string, k)
		for i := range acc.Links {
			acc.Links[i] = take(len(r.Link(i)))
		}
	}
	if rules := r.Rules(); len(rules) > 0 && r.NumMasked() > 0 {
		if cap(sp.Rules) >= len(rules) {
			acc.MaskRules = append(sp.Rules[:0], rules...)
		} else {
			acc.MaskRules = append([]string(nil), rules...)
		}
	}
}
