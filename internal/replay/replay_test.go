package replay

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/refusal"
)

// TestSupersededNotReplayed: a request that panicked after its Access was
// recorded has a second Access of its id (rule internal, facet answering,
// the 500 sent). Replay decides the request once: replaying the second too
// would spend a rate limit twice and report a refusal no client caused.
func TestSupersededNotReplayed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	id := identify.Identity{Account: "7", IP: netip.MustParseAddr("127.0.0.7"), Net: netip.MustParsePrefix("127.0.0.0/24")}
	l.Record(&inspect.Access{RequestID: "r1", Route: "GET /v1/users/{id}", Identity: id, Time: start, Lookup: "5", Status: 200})
	l.Record(&inspect.Access{RequestID: "r1", Route: "GET /v1/users/{id}", Identity: id, Time: start.Add(time.Millisecond),
		Status: 500, Rule: refusal.RuleInternal, Facet: refusal.InternalAnswering})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("tight.yaml", []byte(`
upstream:
  url: http://127.0.0.1:1
identity:
  account: {secret_env: WARDEN_JWT_SECRET}
rate_limits:
  - name: per-account
    facet: account
    rate: 1/m
    burst: 1
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), dir, ledger.Window{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accesses != 2 || rep.Replayed != 1 || rep.NotReplayed[skipSuperseded] != 1 {
		t.Errorf("accesses %d, replayed %d, not replayed %v; want 2, 1, superseded 1", rep.Accesses, rep.Replayed, rep.NotReplayed)
	}
	if len(rep.NewlyRefused) != 0 {
		t.Errorf("newly refused %+v: the one request was replayed twice", rep.NewlyRefused)
	}
	// Every reason is given, 0 included, as the README lists them.
	if b, err := json.Marshal(rep.NotReplayed); err != nil || string(b) != `{"banned":0,"blocked_by_budget":0,"identity":0,"request":0,"store_admit":0,"superseded":1}` {
		t.Errorf("not_replayed %s (%v): want all six reasons", b, err)
	}
}
