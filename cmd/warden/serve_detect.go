package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/detect"
	"github.com/warden-gw/warden/internal/gateway"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
)

// openDetector starts the detector when detect.enabled: a recorder fed
// through its own recording, writing bans through st. The function
// returned closes the recording once the gateway has drained, then sends
// the detector's last observations to the shared store. A reload
// keeps the detector of the start (its rules need a restart) and gives it
// the reloaded allow list (SetAllows). With the
// memory store kept on disk (ks), the detector's ban histories and windows
// are restored from the snapshot and go into every later one.
func openDetector(cfg *config.Config, st store.Store, ks *kept, reg prometheus.Registerer, recm *gateway.RecordingMetrics, sh *shadow.Shadow, log *slog.Logger) (*gateway.Recording, *detect.Detector, func(), error) {
	if !cfg.Detect.Enabled {
		return nil, nil, func() {}, nil
	}
	allows := detectAllows(cfg.Allow)
	var opts []detect.Option
	if shared, ok := st.(store.Detections); ok && cfg.Store.Backend == config.StoreRedis {
		// On Redis the fleet counts and escalates together; on the memory
		// store this process is the whole fleet and counts in place.
		opts = append(opts, detect.WithShared(shared))
	}
	d, err := detect.New(cfg.Detect, allows, st, sh, detect.NewMetrics(reg), log, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	if ks != nil {
		// Restored before the first Access, and under the disk's lock, so
		// no snapshot catches the detector before its state is back.
		ks.disk.Detector(d, func(held *store.DetectState) {
			p := d.Restore(time.Now(), held)
			log.Info("detector state restored", slog.Int("ban_histories", p.Offences), slog.Int("tracks", p.Tracks), slog.Int("dropped", p.Dropped))
		})
	}
	rc := gateway.NewRecording("detect", d, 0, recm)
	log.Info("detector on", slog.Int("rules", len(cfg.Detect.Rules)))
	return rc, d, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rc.Close(ctx); err != nil {
			log.Warn("detector: queue not drained", slog.String("error", err.Error()))
		}
		d.Close()
	}, nil
}

// detectAllows is the config's allow list as the detector reads it.
func detectAllows(cfg []config.Allow) []detect.Allow {
	var allows []detect.Allow
	for _, a := range cfg {
		allows = append(allows, detect.Allow{CIDRs: a.CIDRs, Apps: a.Apps, Accounts: a.Accounts, Rules: a.Rules})
	}
	return allows
}
