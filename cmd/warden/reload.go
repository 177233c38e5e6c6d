package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/gateway"
)

// reloader applies the config file anew (on SIGHUP): it loads and checks
// the file, refuses a change that needs a restart, and builds the new
// pipeline. Each attempt is counted once: accepted, or refused for the
// reason its error gives.
type reloader struct {
	path  string
	over  func(*config.Config) error // the command line's overrides, then Validate
	build func(context.Context, *config.Config) (*gateway.Pipeline, error)
	count func(ok bool) // gateway.Metrics.Reloaded
}

// reload returns the new config and its pipeline, whose background work
// runs until stop is called. On an error the running config stays.
func (r reloader) reload(ctx context.Context, cur *config.Config) (next *config.Config, p *gateway.Pipeline, stop context.CancelFunc, err error) {
	defer func() { r.count(err == nil) }()
	next, err = config.Load(r.path)
	if err == nil {
		err = r.over(next)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if keys := config.NeedsRestart(cur, next); len(keys) > 0 {
		return nil, nil, nil, fmt.Errorf("%s: changing %s needs a restart", r.path, strings.Join(keys, ", "))
	}
	pctx, stop := context.WithCancel(ctx)
	if p, err = r.build(pctx, next); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return next, p, stop, nil
}
