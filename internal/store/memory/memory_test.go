package memory

import (
	"testing"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New(Options{}) })
}

// TestConformanceOneShard runs the suite with everything on one lock and a
// tiny exact set, so the sketch path carries most of the budget tests.
func TestConformanceOneShard(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New(Options{Shards: 1, ExactMax: 100, SweepEvery: -1}) })
}
