package dashboard

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/warden-gw/warden/internal/config"
)

// sample is the now page's figures at one time, read from the process's
// own registry: counters as they stand (the charts take differences).
type sample struct {
	T           int64              `json:"t"` // Unix milliseconds
	Requests    float64            `json:"requests"`
	Refusals    map[string]float64 `json:"refusals"` // "rule facet"
	Masks       map[string]float64 `json:"masks"`    // "rule facet" (the facet from the config)
	Bans        map[string]float64 `json:"bans"`     // detector bans, "rule facet"
	StoreErrors float64            `json:"store_errors"`
	Breaker     float64            `json:"breaker"` // -1: no breaker (the in-process store)
	InFlight    float64            `json:"in_flight"`
}

// samples is a ring of the last hour's samples.
type samples struct {
	mu   sync.Mutex
	ring []sample
	next int
	full bool
}

func newSamples(n int) *samples { return &samples{ring: make([]sample, n)} }

func (s *samples) add(x sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring[s.next] = x
	s.next = (s.next + 1) % len(s.ring)
	s.full = s.full || s.next == 0
}

func (s *samples) all() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.full {
		return append([]sample(nil), s.ring[:s.next]...)
	}
	return append(append([]sample(nil), s.ring[s.next:]...), s.ring[:s.next]...)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// sample reads the registry once.
func (d *Dashboard) sample() sample {
	x := sample{T: d.opts.Now().UnixMilli(), Refusals: map[string]float64{}, Masks: map[string]float64{}, Bans: map[string]float64{}, Breaker: -1}
	facets := maskFacets(d.config())
	fams, _ := d.opts.Gatherer.Gather() // a partial gather still charts what it has
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			v := value(m)
			switch f.GetName() {
			case "warden_requests_total":
				x.Requests += v
			case "warden_refusals_total":
				x.Refusals[label(m, "rule")+" "+label(m, "facet")] += v
			case "warden_budget_masked_total":
				// The counter carries the rule; its facet is the config's.
				rule := label(m, "rule")
				if f := facets[rule]; f != "" {
					rule += " " + f
				}
				x.Masks[rule] += v
			case "warden_detect_bans_total":
				x.Bans[label(m, "rule")+" "+label(m, "facet")] += v
			case "warden_store_errors_total", "warden_store_decision_errors_total":
				x.StoreErrors += v
			case "warden_store_breaker_state":
				x.Breaker = max(x.Breaker, v)
			case "warden_requests_in_flight":
				x.InFlight += v
			}
		}
	}
	return x
}

// maskFacets maps each masking rule of c to the facet it counts on: a
// budget's own, the unreferenced rule's (its link filter's), the fan-out
// cap's (it reads that filter), app for a scope (a class kept for apps
// holding the scope). A rule c no longer names (renamed by a reload) has
// none.
func maskFacets(c *config.Config) map[string]string {
	m := map[string]string{}
	if c == nil {
		return m
	}
	r := c.Ration
	for _, b := range r.Budgets {
		m[b.Name] = b.Facet
	}
	for _, s := range r.Scopes {
		m[s.Name] = "app"
	}
	if u := r.Unreferenced; u != nil {
		m[u.Name] = u.Facet
		if f := r.FanoutCap; f != nil {
			m[f.Name] = u.Facet
		}
	}
	return m
}

// row is one line of a breakdown table.
type row struct {
	Name  string
	Value float64
}

func rows(m map[string]float64) []row {
	out := make([]row, 0, len(m))
	for k, v := range m {
		out = append(out, row{strings.TrimSpace(k), v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Value != out[j].Value {
			return out[i].Value > out[j].Value
		}
		return out[i].Name < out[j].Name
	})
	return out
}

type nowData struct {
	Now      sample
	Refusals []row
	Masks    []row
	Bans     []row
	Banned   int // bans in force; -1 when the store did not list them
	Store    string
	Window   string
}

func (d *Dashboard) nowData(r *http.Request) nowData {
	x := d.sample()
	nd := nowData{Now: x, Refusals: rows(x.Refusals), Masks: rows(x.Masks), Bans: rows(x.Bans), Banned: -1, Window: "last hour"}
	var bl struct {
		Total int `json:"total"`
	}
	if err := d.call(r.Context(), http.MethodGet, "/v1/bans?limit=1", nil, &bl); err == nil {
		nd.Banned = bl.Total
	}
	switch {
	case x.Breaker < 0:
		nd.Store = "in process (memory): no breaker"
	case x.Breaker == 0:
		nd.Store = "closed breaker: store answering"
	case x.Breaker == 1:
		nd.Store = "open breaker: store failing, failure mode applies"
	default:
		nd.Store = "half-open breaker: probing the store"
	}
	return nd
}

func (d *Dashboard) now(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	nd := d.nowData(r)
	d.render(w, r, http.StatusOK, "now", view{Title: "Now", Nav: "now", Data: nd, Elapsed: time.Since(begin).String()})
}

// nowJSON is the now page's live figures: the current sample and the
// last hour's.
func (d *Dashboard) nowJSON(w http.ResponseWriter, r *http.Request) {
	nd := d.nowData(r)
	writeJSON(w, map[string]any{"now": nd.Now, "banned": nd.Banned, "store": nd.Store, "history": d.samples.all(), "every_ms": sampleEvery.Milliseconds()})
}
