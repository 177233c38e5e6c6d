package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The store's decision errors and the reloads are exported at 0 from the
// start, by every label value the gateway counts them with.
func TestMetricsExportedAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	for name, want := range map[string]int{"warden_store_decision_errors_total": 4, "warden_config_reloads_total": 2} {
		if series[name] != want {
			t.Errorf("%s: %d series at start, want %d", name, series[name], want)
		}
	}
}
