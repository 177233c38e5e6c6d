package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/gateway"
	"github.com/warden-gw/warden/internal/inspect"
)

// openCanaries builds the canary responder and seeder when the canary
// section is on. With its key variable unset the gateway serves without
// canaries and says so (error level): a missing key must not take the
// gateway down, nor pass unnoticed.
func openCanaries(cfg *config.Config, log *slog.Logger) ([]gateway.Responder, []gateway.Seeder, error) {
	if !cfg.Canary.Enabled() {
		return nil, nil, nil
	}
	if v, ok := os.LookupEnv(cfg.Canary.KeyEnv); !ok || v == "" {
		log.Error("canaries off: the key variable is not set", slog.String("key_env", cfg.Canary.KeyEnv))
		return nil, nil, nil
	}
	c, err := canary.New(cfg.Canary, nil)
	if err != nil {
		return nil, nil, errors.New("serve: " + err.Error())
	}
	log.Info("canaries on", slog.Int("keys", c.Keys()), slog.Any("seeded", c.Config().Routes.Seed))
	// Canaries go into answers the inspect stage read: a seeded route with
	// no inspect route gets none, and trace would find nothing to name
	// anyone by, with nothing said at start.
	inspected := map[string]bool{}
	for _, r := range cfg.Inspect.Routes {
		inspected[r.Route] = true
	}
	for _, r := range c.Config().Routes.Seed {
		if !inspected[r] {
			log.Warn("canaries: a seeded route has no inspect route: its answers get no canary", slog.String("route", r))
		}
	}
	g := canaryGate{c}
	return []gateway.Responder{g}, []gateway.Seeder{g}, nil
}

// canaryGate plugs the canaries into the gateway's two hooks.
type canaryGate struct{ c *canary.Canaries }

// Respond answers every route about a canary from the key; one without a
// verified account only with canary.anonymous: answer (else the upstream
// answers it as it answers any id: the lab platform with 401).
func (g canaryGate) Respond(_ context.Context, ex *gateway.Exchange) *gateway.Local {
	if g.c.Config().Anonymous != canary.AnonymousAnswer && ex.Identity.Account == "" {
		return nil
	}
	var st int
	var body []byte
	var ok bool
	if ex.Route.Route != nil {
		st, body, ok = g.c.Answer(ex.Route.Route.Pattern, ex.Route.Param, ex.RawQuery)
	} else {
		st, body, ok = g.c.AnswerPath(ex.Method, ex.Path, ex.RawQuery)
	}
	if !ok {
		return nil
	}
	return &gateway.Local{Status: st, Body: body}
}

// Seed inserts the canaries the identity's code shows it, each before its
// anchor record, into the room the page has below the size asked (so the
// answer is never longer than that: package canary's "Pages"); they are
// never records of res (no budget sees them).
func (g canaryGate) Seed(ex *gateway.Exchange, res *inspect.Result, acc *inspect.Access) {
	if ex.Route.Route == nil || res.Len() == 0 || !g.c.Seeds(ex.Route.Route.Pattern) {
		return
	}
	_, ident := g.c.IdentityOf(ex.Identity.Value)
	if ident == "" {
		return
	}
	t := acc.Time // what the ledger records, so a trace replays the same bucket
	if t.IsZero() {
		t = ex.Start
	}
	list := ex.Route.List()
	if g.c.IsSearch(ex.Route.Route.Pattern) {
		// The list a search answer is: its query, sealed under the key;
		// the ledger records it, so a trace replays the same code.
		if list = g.c.SearchList(ex.RawQuery); list == "" {
			return
		}
		acc.List = list
	}
	room := g.c.Room(ex.RawQuery, res.Len())
	if room == 0 { // a full page: nothing goes in (the ledger still keeps a search page's sealed list)
		return
	}
	g.c.PlanRoom(0, ex.Route.Route.Pattern, list, ident, g.c.Bucket(t), res.Len(), room, res.ID,
		func(i int, s canary.Slot, shown bool) {
			if shown {
				p := g.c.Canary(0, s.Canary)
				res.Insert(i, g.c.AppendSummary(nil, &p))
			}
		})
}

var (
	_ gateway.Responder = canaryGate{}
	_ gateway.Seeder    = canaryGate{}
)
