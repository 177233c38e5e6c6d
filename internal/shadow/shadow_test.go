package shadow

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A harvester on a shadow gateway makes a rule decide on every request:
// its "would have" lines are bounded as the enforced "refused" lines are,
// every decision still counted. Before, each made a line (5,663 in one
// second from one harvester).
func TestWouldBounded(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	s := New(prometheus.NewRegistry())
	c := s.Counter("r", Mask)
	const n = 1000
	for range n {
		s.Would(context.Background(), log, c, "r", Mask, "req")
	}
	lines := strings.Count(buf.String(), "would have masked")
	// The calls may straddle one second's turn: two seconds' worth at most.
	if lines < LinesPerSecond || lines > 2*LinesPerSecond {
		t.Errorf("%d lines for %d decisions, want %d to %d", lines, n, LinesPerSecond, 2*LinesPerSecond)
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.GetCounter().GetValue() != n {
		t.Errorf("counted %v (err %v), want every decision, %d", m.GetCounter().GetValue(), err, n)
	}
}

func TestLineBound(t *testing.T) {
	var l lineBound
	at := time.Unix(1_800_000_000, 0)
	for i := range LinesPerSecond + 7 {
		ok, sup := l.take(at.Add(time.Duration(i) * time.Millisecond))
		if ok != (i < LinesPerSecond) || sup != 0 {
			t.Fatalf("line %d: ok %v suppressed %d", i, ok, sup)
		}
	}
	// The next second's first line says how many were left out.
	if ok, sup := l.take(at.Add(time.Second)); !ok || sup != 7 {
		t.Errorf("next second: ok %v suppressed %d, want true 7", ok, sup)
	}
	if ok, sup := l.take(at.Add(time.Second)); !ok || sup != 0 {
		t.Errorf("then: ok %v suppressed %d, want true 0", ok, sup)
	}
}
