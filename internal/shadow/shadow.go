// Package shadow counts and logs what rules in shadow mode would have
// done. A rule in shadow mode (mode: shadow) decides as it would enforced,
// and then changes nothing: the request is admitted, the answer goes out
// as it came, no ban is written. Operators roll a rule out in shadow mode,
// read warden_shadow_total{rule,action} and the "would have" log lines
// (each with the request id; at most LinesPerSecond a second, the next
// line written saying how many were left out), and enforce it once it
// hits only whom it should.
//
// It must never change a request, an answer or the store.
package shadow

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/linebound"
)

// Actions a rule in shadow mode would have taken.
const (
	Refuse = "refuse"
	Mask   = "mask"
	Ban    = "ban"
)

// Shadow counts and logs shadow decisions. Create one per process; every
// configuration load shares it. A nil *Shadow counts nothing.
type Shadow struct {
	total *prometheus.CounterVec
	lines lineBound
}

// LinesPerSecond bounds the "would have" lines, as the gateway bounds its
// "refused" lines: within a second at most this many are written (for
// every rule together), and the next line written says how many were left
// out ("suppressed"). A rule in shadow mode decides on every request of a
// harvester; unbounded, one harvester made thousands of lines a second
// (5,663 in one), the request path's CPU spent writing them. Every
// decision is still counted (warden_shadow_total).
const LinesPerSecond = 100

// lineBound bounds the "would have" lines (linebound).
type lineBound struct{ linebound.Bound }

// take reports whether a line may be written at now, and how many were
// left out before it.
func (l *lineBound) take(now time.Time) (ok bool, suppressed int64) {
	return l.Take(now, LinesPerSecond)
}

// New registers warden_shadow_total on reg (nil: unregistered).
func New(reg prometheus.Registerer) *Shadow {
	s := &Shadow{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_shadow_total",
		Help: "Decisions rules in shadow mode would have made (refuse, mask, ban) and did not, by rule and action.",
	}, []string{"rule", "action"})}
	if reg != nil {
		reg.MustRegister(s.total)
	}
	return s
}

// Counter is the counter of rule's action, looked up once by a rule
// compiled in shadow mode.
func (s *Shadow) Counter(rule, action string) prometheus.Counter {
	if s == nil {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_shadow_unregistered"})
	}
	return s.total.WithLabelValues(rule, action)
}

// Would counts one shadow decision on c and logs "would have <action>"
// with the request id (empty for the detector, which names its evidence in
// attrs), within LinesPerSecond (a nil *Shadow: unbounded).
func (s *Shadow) Would(ctx context.Context, log *slog.Logger, c prometheus.Counter, rule, action, requestID string, attrs ...slog.Attr) {
	c.Inc()
	if log == nil || !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	var suppressed int64
	if s != nil {
		ok := false
		if ok, suppressed = s.lines.take(time.Now()); !ok {
			return
		}
	}
	verb := map[string]string{Refuse: "would have refused", Mask: "would have masked", Ban: "would have banned"}[action]
	if verb == "" {
		verb = "would have " + action
	}
	all := make([]slog.Attr, 0, 4+len(attrs))
	all = append(all, slog.String("rule", rule), slog.String("mode", "shadow"))
	if requestID != "" {
		all = append(all, slog.String("request_id", requestID))
	}
	all = append(all, attrs...)
	if suppressed > 0 {
		all = append(all, slog.Int64("suppressed", suppressed))
	}
	log.LogAttrs(ctx, slog.LevelInfo, verb, all...)
}
