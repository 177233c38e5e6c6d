package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/gateway"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
)

// openLedger opens the ledger (ledger.dir, and ClickHouse with
// ledger.backend: clickhouse) and the recordings that feed them. The
// returned close, deferred by serve, runs once the gateway has drained: it
// feeds each what is still queued, then syncs and closes it (ClickHouse's
// unsent batches stay in its spool for the next start). Without either
// nothing is recorded (serve says so). recm is the process's one set of
// hand-off metrics, shared by every recording (registering a second set
// would panic). also are fed by the ledger's recording after the ledger
// (ClickHouse's with that backend, else the directory's), each Access the
// ledger was fed (the dashboard's Watch): one queue and one hand-off per
// request for both.
func openLedger(cfg *config.Config, reg prometheus.Registerer, recm *gateway.RecordingMetrics, log *slog.Logger, also ...gateway.Recorder) ([]*gateway.Recording, func(), error) {
	lc := cfg.Ledger
	var recs []*gateway.Recording
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if lc.Backend == config.LedgerClickHouse {
		if err := clickhouseReady(lc.ClickHouse, log); err != nil {
			return nil, nil, err
		}
		sink, err := clickhouse.NewSink(lc.ClickHouse, log, clickhouse.NewMetrics(reg))
		if err != nil {
			return nil, nil, err
		}
		// The recorders fed after the ledger go with ClickHouse's when it
		// is the backend (the directory's, if any, then feeds only itself).
		var r gateway.Recorder = sink
		if len(also) > 0 {
			r, also = append(gateway.Recorders{sink}, also...), nil
		}
		rc := gateway.NewRecording("ledger-clickhouse", r, lc.Queue, recm)
		recs = append(recs, rc)
		log.Info("ledger on clickhouse", slog.String("addrs", fmt.Sprint(lc.ClickHouse.Addrs)), slog.String("database", lc.ClickHouse.Database),
			slog.Int("batch_size", lc.ClickHouse.BatchSize), slog.Duration("batch_interval", lc.ClickHouse.BatchInterval), slog.String("spool", lc.ClickHouse.Spool.Dir))
		closers = append(closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := rc.Close(ctx); err != nil {
				log.Error("ledger: clickhouse queue not drained", slog.String("error", err.Error()))
			}
			sink.Close(ctx)
			log.Info("ledger: clickhouse sink closed")
		})
	}
	if lc.Dir == "" {
		if len(recs) == 0 {
			log.Warn("ledger off: no Access is recorded; set ledger.dir (or --ledger-dir) to keep who was served what")
		}
		return recs, closeAll, nil
	}
	l, err := ledger.Open(ledger.Options{Dir: lc.Dir, FsyncInterval: lc.FsyncInterval, MaxAge: lc.Retention.Age(),
		MaxBytes: lc.Retention.MaxBytes, PartitionAccesses: lc.PartitionAccesses, Logger: log, Metrics: ledger.NewMetrics(reg)})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	var r gateway.Recorder = l
	if len(also) > 0 {
		r = append(gateway.Recorders{l}, also...)
	}
	rc := gateway.NewRecording("ledger", r, lc.Queue, recm, queueFull(lc)...)
	log.Info("ledger on", slog.String("dir", lc.Dir), slog.Duration("fsync_interval", lc.FsyncInterval),
		slog.Int("partition_accesses", lc.PartitionAccesses), slog.Int("queue", lc.Queue),
		slog.String("queue_full", lc.QueueFull), slog.Duration("queue_wait", lc.QueueWait))
	closers = append(closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rc.Close(ctx); err != nil {
			log.Error("ledger: queue not drained", slog.String("error", err.Error()))
		}
		if err := l.Close(); err != nil {
			log.Error("ledger: close", slog.String("error", fmt.Sprint(err)))
			return
		}
		log.Info("ledger closed", slog.String("dir", lc.Dir))
	})
	return append(recs, rc), closeAll, nil
}

// queueFull is the recording's choice for a full queue (ledger.queue_full):
// drop at once, or wait up to queue_wait for a slot.
func queueFull(lc config.Ledger) []gateway.RecordingOption {
	if lc.QueueFull == config.QueueWait {
		return []gateway.RecordingOption{gateway.WaitWhenFull(lc.QueueWait)}
	}
	return nil
}

// clickhouseReady refuses to start on a ClickHouse that answers but will
// not take the ledger (a wrong user or password, no database or tables):
// every batch would go to the spool until it filled, then be dropped.
// One that cannot be reached is said and let be: the spool is for that.
func clickhouseReady(cc clickhouse.Config, log *slog.Logger) error {
	c, err := clickhouse.NewClient(cc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(cc.Timeout, 10*time.Second))
	defer cancel()
	err = c.Ready(ctx)
	var unreachable *clickhouse.UnreachableError
	switch {
	case errors.As(err, &unreachable):
		log.Warn("ledger: clickhouse not reachable at start; batches wait in the spool", slog.String("error", err.Error()))
		return nil
	case errors.Is(err, clickhouse.ErrNoSchema):
		return fmt.Errorf("ledger: %w", err)
	case err != nil:
		return fmt.Errorf("ledger: %w (check ledger.clickhouse's user, password and database; warden ledger init makes the database)", err)
	}
	return nil
}
