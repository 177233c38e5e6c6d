package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/gateway"
	"github.com/warden-gw/warden/internal/ledger"
)

// openLedger opens the ledger (ledger.dir) and the recording that feeds
// it. The returned close, deferred by serve, runs once the gateway has
// drained: it feeds the ledger what is still queued, then syncs and
// closes it. Without ledger.dir nothing is recorded (serve says so).
// recm is the process's one set of hand-off metrics, shared by every
// recording (registering a second set would panic).
func openLedger(cfg *config.Config, reg prometheus.Registerer, recm *gateway.RecordingMetrics, log *slog.Logger) ([]*gateway.Recording, func(), error) {
	lc := cfg.Ledger
	if lc.Dir == "" {
		log.Warn("ledger off: no Access is recorded; set ledger.dir (or --ledger-dir) to keep who was served what")
		return nil, func() {}, nil
	}
	l, err := ledger.Open(ledger.Options{Dir: lc.Dir, FsyncInterval: lc.FsyncInterval, MaxAge: lc.Retention.MaxAge,
		MaxBytes: lc.Retention.MaxBytes, Logger: log, Metrics: ledger.NewMetrics(reg)})
	if err != nil {
		return nil, nil, err
	}
	rc := gateway.NewRecording("ledger", l, lc.Queue, recm)
	log.Info("ledger on", slog.String("dir", lc.Dir), slog.Duration("fsync_interval", lc.FsyncInterval), slog.Int("queue", lc.Queue))
	return []*gateway.Recording{rc}, func() {
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
	}, nil
}
