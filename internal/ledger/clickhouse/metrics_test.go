package clickhouse

import dto "github.com/prometheus/client_model/go"

// testutilValue is the dropped counter's value.
func testutilValue(m *Metrics) float64 {
	var d dto.Metric
	m.dropped.Write(&d)
	return d.GetCounter().GetValue()
}
