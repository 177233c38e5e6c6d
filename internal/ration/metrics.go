package ration

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/shadow"
)

// Metrics are rationing's counters. Create them once per process; every
// Rationer built on a config load shares them.
type Metrics struct {
	served     *prometheus.CounterVec // subjects offered to a budget and allowed
	masked     *prometheus.CounterVec // records masked, by rule
	blocked    *prometheus.CounterVec // answers refused, by rule
	enumerated *prometheus.CounterVec // unreferenced look-ups, by route
	storeErrs  prometheus.Counter
	shadow     *shadow.Shadow
}

// Shadow is the process's counter of shadow decisions
// (warden_shadow_total), registered with rationing's metrics and shared by
// admission and the detector. Nil for a nil *Metrics.
func (m *Metrics) Shadow() *shadow.Shadow {
	if m == nil {
		return nil
	}
	return m.shadow
}

// NewMetrics registers rationing's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_budget_served_total",
			Help: "Subjects a distinct-subject budget allowed in answers that went out (re-views included; a refused answer counts nothing).",
		}, []string{"budget"}),
		masked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_budget_masked_total",
			Help: "Records whose class fields were masked in answers that went out, by the rule that masked them.",
		}, []string{"rule"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_budget_blocked_total",
			Help: "Answers refused with 429, by rule.",
		}, []string{"rule"}),
		enumerated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_unreferenced_lookups_total",
			Help: "Direct look-ups of ids the identity was never shown (enumeration), by route.",
		}, []string{"route"}),
		storeErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_ration_store_errors_total",
			Help: "Rationing decisions the state store failed.",
		}),
	}
	m.shadow = shadow.New(reg)
	if reg != nil {
		reg.MustRegister(m.served, m.masked, m.blocked, m.enumerated, m.storeErrs)
	}
	return m
}
