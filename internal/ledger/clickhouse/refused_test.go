package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/refusal"
)

// TestRefusedIdentities: the distinct identities refused by the rules
// asked, each as the refusal named it (its facet and the identity's value
// of that facet), are the same on the directory and on ClickHouse, and
// are what the Accesses say: other rules' refusals, refusals whose facet
// is no identity facet or whose identity lacks it, and Accesses outside
// the window are not counted; an identity refused many times, on other
// addresses too, is one.
func TestRefusedIdentities(t *testing.T) {
	s := server(t)
	r := rand.New(rand.NewPCG(3, 4))
	var acc []*inspect.Access
	for i := range 4000 {
		a := &inspect.Access{RequestID: fmt.Sprintf("%024x", i+1), Time: t0.Add(time.Duration(i) * 3 * time.Hour / 4000), Status: 200,
			Route: "GET /v1/users/{id}", Classes: []string{"contact"}, Records: []inspect.Record{{ID: fmt.Sprint(r.IntN(300)), Classes: 1}}}
		acct := r.IntN(60)
		if acct > 0 {
			a.Identity.Account = fmt.Sprint(acct)
		}
		a.Identity.IP = netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(30)), 1})
		a.Identity.Net = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, a.Identity.IP.As4()[2], 0}), 24)
		refused := func(status int, rule, facet string) { a.Status, a.Rule, a.Facet, a.Records = status, rule, facet, nil }
		switch k := r.IntN(20); k {
		case 0:
			refused(403, refusal.RuleBan, "account") // anonymous (acct 0): not counted
		case 1:
			refused(403, refusal.RuleBan, "ip")
		case 2:
			refused(429, "contacts-block", "account")
		case 3:
			refused(429, "unreferenced", "net")
		case 4:
			refused(429, "per-ip-rate", "ip") // a rate limit: not asked
		case 5:
			refused(401, refusal.RuleIdentity, "account")
		case 6:
			refused(400, refusal.RuleRequest, "ambiguous_path")
		case 7:
			refused(503, refusal.RuleStore, refusal.StoreAdmit)
		case 8:
			refused(403, refusal.RuleBan, "fingerprint") // no fingerprint: not counted
		}
		acc = append(acc, a)
	}
	dir, ch := writeBoth(t, config(t, s, "refused"), acc)
	rules := []string{refusal.RuleBan, "contacts-block", "unreferenced", "never-refused"}
	want := func(win ledger.Window) int {
		seen := map[string]bool{}
		for _, a := range acc {
			in := (win.From.IsZero() || !a.Time.Before(win.From)) && (win.To.IsZero() || !a.Time.After(win.To))
			if !in || (a.Rule != refusal.RuleBan && a.Rule != "contacts-block" && a.Rule != "unreferenced") {
				continue
			}
			f, ok := identify.ParseFacet(a.Facet)
			if v := a.Identity.Value(f); ok && v != "" {
				seen[a.Facet+"="+v] = true
			}
		}
		return len(seen)
	}
	ctx := context.Background()
	for _, win := range []ledger.Window{{}, cut, {From: t0.Add(4 * time.Hour)}} {
		rd, err := ledger.OpenReader(dir, win)
		if err != nil {
			t.Fatal(err)
		}
		local, err := rd.RefusedIdentities(rules)
		rd.Close()
		if err != nil {
			t.Fatal(err)
		}
		fleet, err := ch.RefusedIdentities(ctx, win, rules)
		if err != nil {
			t.Fatal(err)
		}
		if w := want(win); local != w || fleet != w {
			t.Errorf("window %v: %d on the directory, %d on ClickHouse, want %d", win, local, fleet, w)
		}
		if win.From.IsZero() && want(win) < 50 {
			t.Fatalf("only %d identities refused: the test asks too little", want(win))
		}
	}
	for _, rules := range [][]string{nil, {"never-refused"}} {
		rd, err := ledger.OpenReader(dir, ledger.Window{})
		if err != nil {
			t.Fatal(err)
		}
		local, err := rd.RefusedIdentities(rules)
		rd.Close()
		fleet, err2 := ch.RefusedIdentities(ctx, ledger.Window{}, rules)
		if err != nil || err2 != nil || local != 0 || fleet != 0 {
			t.Errorf("rules %q: %d (%v) on the directory, %d (%v) on ClickHouse, want 0", rules, local, err, fleet, err2)
		}
	}
}
