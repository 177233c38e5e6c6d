package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/gateway"
)

// TestReloadCountedOnce: every reload attempt is counted once in
// warden_config_reloads_total, accepted or refused, whatever refused it (a
// pipeline that fails to build was counted both ways).
func TestReloadCountedOnce(t *testing.T) {
	const running = "listen: 127.0.0.1:8080\nrate_limits: [{name: per-ip, facet: ip, rate: 1/m, burst: 3}]\n"
	cases := []struct {
		name      string
		file      string
		buildErr  error
		wantErr   string // "" = accepted
		wantBuilt bool
	}{
		{"accepted", strings.Replace(running, "burst: 3", "burst: 1", 1), nil, "", true},
		{"broken file", "rate_limits: [{name: x, facet: nope}]\n", nil, `"nope" is not`, false},
		{"needs a restart", strings.Replace(running, "8080", "8090", 1), nil, "changing listen needs a restart", false},
		{"pipeline fails", running, errors.New("identity: LAB_JWT_SECRET is not set"), "LAB_JWT_SECRET is not set", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "warden.yaml")
			if err := os.WriteFile(path, []byte(running), 0o600); err != nil {
				t.Fatal(err)
			}
			cur, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			gm, err := gateway.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			var built *config.Config
			var pctx context.Context
			r := reloader{path: path, over: (*config.Config).Validate, count: gm.Reloaded,
				build: func(ctx context.Context, next *config.Config) (*gateway.Pipeline, error) {
					built, pctx = next, ctx
					return nil, c.buildErr
				}}

			next, _, stop, err := r.reload(context.Background(), cur)
			ok, refused := reloads(t, reg)
			if ok+refused != 1 {
				t.Fatalf("reload counted %v times (ok %v, refused %v), want once", ok+refused, ok, refused)
			}
			if (built != nil) != c.wantBuilt {
				t.Fatalf("pipeline built: %v, want %v", built != nil, c.wantBuilt)
			}
			if c.wantErr == "" {
				if err != nil || ok != 1 {
					t.Fatalf("want accepted and counted ok, got %v (ok %v)", err, ok)
				}
				if next != built || next.Limits[0].Burst != 1 {
					t.Fatalf("the new config is not the one built: %+v", next)
				}
				if stop(); pctx.Err() == nil {
					t.Fatal("stop does not end the new pipeline's context")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || refused != 1 {
				t.Fatalf("want refused (%q) and counted refused, got %v (refused %v)", c.wantErr, err, refused)
			}
			if next != nil || stop != nil {
				t.Fatal("a refused reload returned a config or a stop")
			}
			if pctx != nil && pctx.Err() == nil {
				t.Fatal("a pipeline that failed to build keeps its context")
			}
		})
	}
}

// reloads reads warden_config_reloads_total by result.
func reloads(t *testing.T, g prometheus.Gatherer) (ok, refused float64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "warden_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case l.GetName() != "result":
				case l.GetValue() == "ok":
					ok += m.GetCounter().GetValue()
				case l.GetValue() == "refused":
					refused += m.GetCounter().GetValue()
				default:
					t.Fatalf("result %q", l.GetValue())
				}
			}
		}
	}
	return ok, refused
}
