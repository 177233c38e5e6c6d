package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/warden-gw/warden/internal/config"
)

// Gateway serves one listener with the current Pipeline. Reload swaps the
// pipeline atomically; the listener, the front and its connections stay.
type Gateway struct {
	cur   atomic.Pointer[Pipeline]
	m     *Metrics
	log   *slog.Logger
	ids   *ids
	front front
	name  frontName
	// edgeLines bounds the log lines of the edge's refusals.
	edgeLines refusedLog
}

type front interface {
	serveListener(ln net.Listener) error
	shutdown(ctx context.Context) error
}

// New builds a gateway on its first pipeline. The front (fast or std) is
// chosen from cfg once; changing it, the listener or TLS needs a restart.
func New(cfg *config.Config, p *Pipeline, m *Metrics, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{m: m, log: log, ids: newIDs()}
	g.cur.Store(p)
	switch cfg.ResolveFront() {
	case config.FrontLoop:
		lf, err := newLoopFront(g, cfg)
		if err != nil {
			return nil, err
		}
		g.front, g.name = lf, frontLoop
	case config.FrontFast:
		g.front, g.name = newFastFront(g, cfg, frontFast), frontFast
	default:
		sf, err := newStdFront(g, cfg)
		if err != nil {
			return nil, err
		}
		g.front, g.name = sf, frontStd
	}
	return g, nil
}

// Front names the HTTP front in use.
func (g *Gateway) Front() string { return g.name.String() }

func (g *Gateway) pipeline() *Pipeline { return g.cur.Load() }

// Pipeline returns the pipeline in force.
func (g *Gateway) Pipeline() *Pipeline { return g.cur.Load() }

// Swap installs a new pipeline and returns the old one.
func (g *Gateway) Swap(p *Pipeline) *Pipeline { return g.cur.Swap(p) }

// Serve serves ln until Shutdown; it returns nil after a clean shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	err := g.front.serveListener(ln)
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errServerClosed) {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting and waits for requests in flight until ctx ends.
func (g *Gateway) Shutdown(ctx context.Context) error {
	return g.front.shutdown(ctx)
}
