package ledger

import (
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/refusal"
)

// RefusedIdentities reads the open hour too, through the cache and
// without, and counts each identity once, as its refusal named it.
func TestRefusedIdentitiesOpenLog(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	l, err := Open(Options{Dir: dir, Now: func() time.Time { return t0.Add(10 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := 0
	add := func(account, ip, rule, facet string) {
		n++
		e := &Entry{Time: t0.Add(time.Duration(n) * time.Second), RequestID: string(rune('a' + n)), Route: "GET /x", Status: 200, Rule: rule, Facet: facet}
		e.Identity[1], e.Identity[2] = account, ip
		if rule != "" {
			e.Status = 403
		}
		l.Add(e)
	}
	add("1", "10.0.0.1", refusal.RuleBan, "account")
	add("1", "10.0.0.2", refusal.RuleBan, "account") // the same account: one
	add("2", "10.0.0.2", refusal.RuleBan, "ip")
	add("3", "10.0.0.2", "contacts-block", "ip") // the same address, another rule: one
	add("4", "10.0.0.3", "contacts-block", "account")
	add("5", "10.0.0.4", "per-ip", "ip")            // not asked
	add("", "10.0.0.5", refusal.RuleBan, "account") // no account: nobody
	add("6", "10.0.0.6", "", "")
	l.Sync()
	cache := NewCache(0)
	for _, opts := range [][]ReaderOption{nil, {WithCache(cache)}, {WithCache(cache)}} {
		rd, err := OpenReader(dir, Window{}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rd.RefusedIdentities([]string{refusal.RuleBan, "contacts-block"})
		rd.Close()
		if err != nil || got != 3 {
			t.Fatalf("%d refused identities (%v), want 3: account 1, ip 10.0.0.2, account 4", got, err)
		}
	}
}
