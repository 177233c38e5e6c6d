package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
	"github.com/warden-gw/warden/internal/store/memory/disk"
)

// Row (e-snap) is row (e) with its state kept on disk: a store.memory.dir
// preloaded with a snapshot of SnapshotKeys keys, snapshotted every
// SnapshotInterval while wrk runs, so it measures row (e) during snapshots
// of a large store (the target: within 5% of row (e)).
const (
	DefaultSnapshotInterval = 5 * time.Second
	DefaultSnapshotKeys     = 2_000_000
)

// WithStateDir sets store.memory.dir and snapshot_interval in conf.
func WithStateDir(conf []byte, dir string, interval time.Duration) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(conf, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("bench: state dir: config is not one YAML document (%v)", err)
	}
	mem := mapping(mapping(doc.Content[0], "store"), "memory")
	setScalar(mem, "dir", dir)
	setScalar(mem, "snapshot_interval", interval.String())
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("bench: state dir: %w", err)
	}
	return out, nil
}

// WithLedgerDir sets ledger.dir in conf: row (e-ledger) is row (e) with
// every Access recorded (the target: within 5% of row (e)).
func WithLedgerDir(conf []byte, dir string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(conf, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("bench: ledger dir: config is not one YAML document (%v)", err)
	}
	setScalar(mapping(doc.Content[0], "ledger"), "dir", dir)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("bench: ledger dir: %w", err)
	}
	return out, nil
}

// withoutStateDir removes store.memory.dir and the ledger from a lab
// config: rows (e) and (e-fast) keep their state in memory and record
// nothing, as before, so they never share a directory (one warden per
// directory) and (e) stays the baseline that rows (e-snap) and (e-ledger)
// are measured against.
func withoutStateDir(root *yaml.Node) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "ledger" {
			root.Content = append(root.Content[:i:i], root.Content[i+2:]...)
			break
		}
	}
	st := get(root, "store")
	if st == nil || st.Kind != yaml.MappingNode {
		return
	}
	mem := get(st, "memory")
	if mem == nil || mem.Kind != yaml.MappingNode {
		return
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(mem.Content); i += 2 {
		if k := mem.Content[i].Value; k != "dir" && k != "snapshot_interval" {
			kept = append(kept, mem.Content[i], mem.Content[i+1])
		}
	}
	mem.Content = kept
}

// PreloadState writes a snapshot of keys rate-limit keys into dir, as a
// gateway that has seen that many addresses would hold: each key's limit
// runs an hour ahead, so none expires during the run.
func PreloadState(ctx context.Context, dir string, keys int, now time.Time) error {
	d, err := disk.Open(disk.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }})
	if err != nil {
		return fmt.Errorf("bench: preload: %w", err)
	}
	st := memory.New(memory.Options{SweepEvery: -1, HashKey: d.HashKey(), MaxKeys: max(keys+keys/4, 1<<21)})
	req := &store.AdmitRequest{Limits: make([]store.LimitRequest, 1)}
	for i := range keys {
		req.Limits[0] = store.LimitRequest{Key: fmt.Sprintf("preload:%d", i), Interval: time.Hour, Burst: 10, Cost: 1}
		if _, err := st.Admit(ctx, now, req); err != nil {
			d.Close(ctx, nil)
			return fmt.Errorf("bench: preload: %w", err)
		}
	}
	if err := d.Close(ctx, st); err != nil {
		return fmt.Errorf("bench: preload: %w", err)
	}
	return nil
}
