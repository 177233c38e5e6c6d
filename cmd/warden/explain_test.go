package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory/disk"
)

// explainLedger writes a ledger of Accesses by two identities: a served
// answer, a masked one, a refusal, a look-up of an id never shown, an
// upstream's 404 and an upstream down, a burst and a rate limit's
// refusal, a CONNECT refused at the edge, the state store failing at
// admission; and a config whose budgets and
// limits count them.
func explainLedger(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	who := identify.Identity{App: "web", Account: "7", IP: netip.MustParseAddr("192.0.2.7"),
		Net: netip.MustParsePrefix("192.0.2.0/24"), Fingerprint: "fp-1"}
	anon := identify.Identity{IP: netip.MustParseAddr("198.51.100.9"), Net: netip.MustParsePrefix("198.51.100.0/24")}
	const contact, profile = inspect.ClassSet(1), inspect.ClassSet(2)
	classes := []string{"contact", "profile"}
	for _, a := range []*inspect.Access{
		{RequestID: "req-served", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(time.Minute), Status: 200, Classes: classes, AgeRank: 2, // past every tier
			Records: []inspect.Record{{ID: "11", Classes: contact | profile}}},
		{RequestID: "req-masked", Route: "GET /v1/users/{id}/followers", Identity: who, Time: t0.Add(2 * time.Minute), Status: 200,
			List: "11", Classes: classes, MaskRules: []string{"contact-account-day"}, AgeRank: 1, // under a day old
			Records: []inspect.Record{{ID: "12", Classes: contact | profile}, {ID: "13", Classes: contact | profile, Masked: contact},
				{ID: "14", Classes: contact | profile | 4, Masked: contact}}}, // bit 2 names no class of the route
		{RequestID: "req-refused", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(3 * time.Minute), Status: 429,
			Classes: classes, Rule: "contact-ip-hour", Facet: "ip"},
		{RequestID: "req-lookup", Route: "GET /v1/users/{id}", Identity: anon, Time: t0.Add(4 * time.Minute), Status: 200,
			Lookup: "99", Unreferenced: true, Classes: classes, Records: []inspect.Record{{ID: "99", Classes: profile}}},
		// The upstream's own 404, passed on; the upstream down, warden's 502.
		{RequestID: "req-upstream-404", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(5 * time.Minute), Status: 404,
			Lookup: "0", Classes: classes},
		{RequestID: "req-upstream-down", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(6 * time.Minute), Status: 502,
			Lookup: "12", Classes: classes, Rule: "upstream"},
		// A burst, then a request the per-ip rate limit refused.
		{RequestID: "req-burst", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(6*time.Minute + 500*time.Millisecond), Status: 200,
			Lookup: "15", Classes: classes},
		{RequestID: "req-rate-limited", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(6*time.Minute + time.Second), Status: 429,
			Classes: classes, Rule: "per-ip", Facet: "ip"},
		// A CONNECT refused at the edge: no route, the peer alone.
		{RequestID: "req-edge", Identity: anon, Time: t0.Add(7 * time.Minute), Status: 405, Rule: refusal.RuleRequest, Facet: refusal.RequestConnect},
		// The state store down at admission: no rate limit asked.
		{RequestID: "req-store-admit", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(8 * time.Minute), Status: 503,
			Lookup: "16", Classes: classes, Rule: refusal.RuleStore, Facet: refusal.StoreAdmit},
		// Refused by the detector's ban of the account (its reason in the
		// state directory's ban log, below).
		{RequestID: "req-banned", Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(9 * time.Minute), Status: 403,
			Lookup: "17", Classes: classes, Rule: refusal.RuleBan, Facet: "account"},
	} {
		l.Record(a)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	d, err := disk.Open(disk.Options{Dir: state})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, b := range []store.Ban{
		{Facet: "account", Value: "7", Reason: "an earlier ban, lifted", By: "ops", Created: t0, Until: t0.Add(time.Hour)},
		{Facet: "account", Value: "7", Reason: "harvesting contact details (ticket 4411)", By: "ops", Created: t0.Add(8*time.Minute + 30*time.Second)}, // no expiry
	} {
		if err := d.PutBan(ctx, b); err != nil {
			t.Fatal(err)
		}
		if b.Until.Equal(t0.Add(time.Hour)) {
			if err := d.RemoveBan(ctx, b.Key()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(t.TempDir(), "warden.yaml")
	yaml := `ledger: {dir: ` + dir + `}
store: {memory: {dir: ` + state + `}}
identity:
  account: {secret_env: WARDEN_JWT_SECRET}
ration:
  budgets:
    - {name: contact-account-day, facet: account, class: contact, limit: 2, window: 24h,
       account_age: [{younger_than: 24h, limit: 1}]}
    - {name: contact-ip-hour, facet: ip, class: contact, limit: 5, window: 1h, action: block}
    - {name: profile-fingerprint, facet: fingerprint, class: profile, limit: 100, window: 10m}
    - {name: contact-search-day, facet: account, class: contact, provenance: [search], limit: 20, window: 24h}
  unreferenced: {facet: account}
rate_limits:
  - {name: per-ip, facet: ip, rate: 1/s, burst: 2}
  - {name: per-account, facet: account, rate: 60/m, burst: 120, routes: ["GET /v1/users/{user}"]}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// TestExplainGolden: warden explain's table and JSON, with the config's
// budgets and without a config, are the golden files' to the byte
// (UPDATE_GOLDEN=1 rewrites them).
func TestExplainGolden(t *testing.T) {
	dir, cfg := explainLedger(t)
	// The ledger's file and directory are the test's temporary ones.
	tmp := regexp.MustCompile(regexp.QuoteMeta(dir) + `[^\s"]*`)
	for _, id := range []string{"req-served", "req-masked", "req-refused", "req-lookup", "req-upstream-404", "req-upstream-down", "req-rate-limited", "req-edge", "req-store-admit", "req-banned"} {
		for _, c := range []struct {
			name string
			args []string
		}{
			{"table", []string{"--config", cfg}},
			{"json", []string{"--config", cfg, "--json"}},
			{"noconfig.table", []string{"--ledger", dir}},
			{"noconfig.json", []string{"--ledger", dir, "--json"}},
		} {
			t.Run(id+"."+c.name, func(t *testing.T) {
				var out, errb bytes.Buffer
				if err := runExplain(context.Background(), append([]string{id}, c.args...), &out, &errb); err != nil {
					t.Fatalf("explain %s %v: %v\n%s", id, c.args, err, errb.String())
				}
				got := tmp.ReplaceAll(out.Bytes(), []byte("LEDGER"))
				golden := filepath.Join("testdata", "explain", id+"."+c.name)
				if os.Getenv("UPDATE_GOLDEN") != "" {
					os.WriteFile(golden, got, 0o644)
				}
				if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(got, want) {
					t.Errorf("explain %s %v:\n%s\nwant (%s, %v):\n%s", id, c.args, got, golden, err, want)
				}
			})
		}
	}
	// Errors: no id, an id the ledger does not hold (saying what the
	// ledger records), one outside the window asked (saying the window).
	var out, errb bytes.Buffer
	const notRecorded = "the ledger records answers on the route map's routes, refusals and upstream failures, not an answer on a path outside the route map"
	if err := runExplain(context.Background(), []string{"nope", "--ledger", dir}, &out, &errb); err == nil ||
		err.Error() != "not found: no request nope in the ledger "+dir+": "+notRecorded {
		t.Errorf("unknown id: %v", err)
	}
	for _, c := range []struct {
		args   []string
		window string
	}{
		{[]string{"--from", "2026-11-20T10:02:00Z"}, " from 2026-11-20T10:02:00Z"},
		{[]string{"--to", "2026-11-20T10:00:30Z"}, " up to 2026-11-20T10:00:30Z"},
		{[]string{"--from", "2026-11-20T09:00:00Z", "--to", "2026-11-20T10:00:30Z"}, " from 2026-11-20T09:00:00Z to 2026-11-20T10:00:30Z"},
	} {
		err := runExplain(context.Background(), append([]string{"req-served", "--ledger", dir}, c.args...), &out, &errb)
		if want := "not found: no request req-served in the ledger " + dir + c.window + ": it may be outside that window, or not recorded (" + notRecorded + ")"; err == nil || err.Error() != want {
			t.Errorf("outside the window %v: %v, want %s", c.args, err, want)
		}
	}
	if err := runExplain(context.Background(), []string{"", "--ledger", dir}, &out, &errb); err == nil ||
		err.Error() != "bad request: a request id is required" {
		t.Errorf("empty id: %v", err)
	}
}
