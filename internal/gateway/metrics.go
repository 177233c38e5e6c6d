package gateway

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's Prometheus collectors, created once per process
// and shared by every Pipeline built on a reload.
type Metrics struct {
	requests   *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	upstream   prometheus.Histogram
	upErrors   *prometheus.CounterVec
	badReqs    *prometheus.CounterVec
	panics     prometheus.Counter
	storeFail  *prometheus.CounterVec
	unverified *prometheus.CounterVec
	inflight   prometheus.Gauge
	reloads    *prometheus.CounterVec
	statusText [600]string
	// byCode caches the requests counter per front and status: the label
	// lookup is a hash of both labels, on every request otherwise.
	byCode [numFronts][600]atomic.Pointer[prometheus.Counter]
}

// countRequest counts one answered request.
func (m *Metrics) countRequest(front frontName, code int) {
	if code < 0 || code >= len(m.statusText) {
		m.requests.WithLabelValues(front.String(), "other").Inc()
		return
	}
	p := m.byCode[front][code].Load()
	if p == nil {
		c := m.requests.WithLabelValues(front.String(), m.statusText[code])
		p = &c
		m.byCode[front][code].Store(p)
	}
	(*p).Inc()
}

// badRequest counts a request refused for breaking a server bound.
func (m *Metrics) badRequest(front frontName, reason string) {
	m.badReqs.WithLabelValues(front.String(), reason).Inc()
}

// frontHelp says what the front label names: the front the gateway runs,
// whichever code served the request (one series per gateway and status).
const frontHelp = " The front label is the gateway's front (config front, auto resolved): requests that the loop front hands, with their connection, to fasthttp count as loop."

// NewMetrics registers the gateway's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_requests_total", Help: "Requests answered, by front and status code." + frontHelp,
		}, []string{"front", "code"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_refusals_total", Help: "Requests refused or blocked by warden, by rule and facet as the answer's body and the ledger name them: those refused at the edge too (rule request, the reason as facet: connect, malformed, ambiguous_path, body_too_large, header_too_large, read_timeout, pipelined_too_far). Not here: an upstream's failure or a recovered panic (counters of their own).",
		}, []string{"rule", "facet"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_upstream_duration_seconds", Help: "Time from sending a request upstream to its answer's header.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		upErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_upstream_errors_total", Help: "Upstream failures by front and kind (unreachable, timeout, too_large; std front also client_gone: the client left first)." + frontHelp,
		}, []string{"front", "kind"}),
		badReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_bad_requests_total",
			Help: "Requests refused before the upstream for breaking a server bound, by front and reason (body_too_large, header_too_large, read_timeout, malformed, ambiguous_path, pipelined_too_far: over 1 MiB sent ahead of the answers on the loop, answered 429 and closed). Each answered one is in warden_refusals_total{rule=\"request\"} too; a CONNECT, which breaks no bound, only there. On the std front over TLS net/http answers some itself (a header far past the bound, a request it cannot parse, a late header): net_http, once per connection that closed with one, in no other counter." + frontHelp,
		}, []string{"front", "reason"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_panics_total", Help: "Panics recovered while serving a request (answered 500).",
		}),
		unverified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_credentials_unverified_total",
			Help: "Requests carrying a credential warden could not verify, by facet (account, app), reason and action (refused, stripped).",
		}, []string{"facet", "reason", "action"}),
		storeFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_decision_errors_total", Help: "Decisions whose store call failed, by stage and outcome (failed_open, refused).",
		}, []string{"stage", "outcome"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_requests_in_flight", Help: "Requests being served.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_config_reloads_total", Help: "Configuration reloads by result.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.refusals, m.upstream, m.upErrors, m.badReqs, m.panics, m.storeFail, m.unverified, m.inflight, m.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for i := range m.statusText {
		m.statusText[i] = strconv.Itoa(i)
	}
	// Series a dashboard or an alert watches from the start, at 0: a
	// counter that appears only with its first error reads as "not
	// exported" until then (the memory store's never fail).
	for _, stage := range []string{"admit", "ration"} { // refusal.StoreAdmit, StoreRation
		for _, outcome := range []string{"failed_open", "refused"} {
			m.storeFail.WithLabelValues(stage, outcome)
		}
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("refused")
	return m, nil
}

// Reloaded counts a configuration reload attempt.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("refused").Inc()
	}
}
