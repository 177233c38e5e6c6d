package guard

import (
	"context"
	"errors"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

var _ store.Detections = (*Guard)(nil)

var errNoDetections = errors.New("the store keeps no detector state")

// Observe counts under the guard and never fails open: the detector, its
// only caller, keeps counting in its own process when the store fails.
func (g *Guard) Observe(ctx context.Context, obs []store.Observation) ([]int, error) {
	d, ok := g.inner.(store.Detections)
	if !ok {
		return nil, errNoDetections
	}
	var res []int
	_, err := g.call(ctx, "observe", func(ctx context.Context) (err error) {
		res, err = d.Observe(ctx, obs)
		return err
	})
	return res, err
}

// Offend records under the guard and never fails open.
func (g *Guard) Offend(ctx context.Context, now time.Time, k store.BanKey, durations []time.Duration) (store.Offence, error) {
	d, ok := g.inner.(store.Detections)
	if !ok {
		return store.Offence{}, errNoDetections
	}
	var o store.Offence
	_, err := g.call(ctx, "offend", func(ctx context.Context) (err error) {
		o, err = d.Offend(ctx, now, k, durations)
		return err
	})
	return o, err
}
