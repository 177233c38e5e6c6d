package trace

import (
	"context"

	"github.com/warden-gw/warden/internal/ledger"
)

// Replayer is a ledger that replays a window's Accesses in time order and
// says what cut the replay short: a fleet's ledger in ClickHouse
// (clickhouse.Client.Each).
type Replayer interface {
	Each(ctx context.Context, win ledger.Window, fn func(*ledger.Entry) bool) error
}

// Replay is a Replayer's whole ledger as Entries, for ReportEntries and
// Served (`warden trace --clickhouse` and the dashboard's trace page on a
// fleet). Entries has no error, so Replay keeps it: a report from part of
// the ledger must not be given, so Err is asked after each use.
type Replay struct {
	ctx context.Context
	src Replayer
	err error
}

// NewReplay replays src's every Access, under ctx.
func NewReplay(ctx context.Context, src Replayer) *Replay {
	return &Replay{ctx: ctx, src: src}
}

// Each replays every Access in time order until fn says stop.
func (r *Replay) Each(fn func(*ledger.Entry) bool) {
	r.err = r.src.Each(r.ctx, ledger.Window{}, fn)
}

// Err is what cut the last replay short; nil on a nil Replay (no ledger),
// so that a caller with an optional ledger asks it unconditionally.
func (r *Replay) Err() error {
	if r == nil {
		return nil
	}
	return r.err
}
