package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// detectConfig: the lab's profile and list routes, generous budgets, and
// the detector's velocity and fan-out rules.
func detectConfig(store string) string {
	return `log: {format: json, level: info}
identity:
  account: {secret_env: LAB_JWT_SECRET}
` + store + `inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
      lookup: id
    - route: "GET /v1/users/{id}/followers"
      records: ["$.users[*]"]
      id: id
      links: ["$.users[*].id"]
      list: id
ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: 100000, window: 24h}
detect:
  enabled: true
  rules:
    - {name: contact-velocity, kind: velocity, facet: account, limit: 20, window: 10s}
    - {name: list-fanout, kind: fanout, facet: account, limit: 5, window: 10m}
    - {name: list-fanout-shadow, kind: fanout, facet: account, limit: 2, window: 10m, mode: shadow}
`
}

// A harvester reading contact details at machine speed is banned within
// 5 s of its first request, on its account (not its address: a real user
// behind the same address goes on), with the evidence as the ban's reason;
// warden ban rm (the admin API's DELETE) lifts it. On both stores.
func TestDetectorBans(t *testing.T) {
	platform := startPlatform(t, 2000)
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			g := startGateway(t, detectConfig(storeSection(t, backend)), platform)
			c := clientFrom("127.0.8.1")
			harv := map[string]string{"Authorization": "Bearer " + token(t, "777")}
			start := time.Now()
			var bannedAt time.Duration
			for i := 0; i < 2000 && time.Since(start) < 10*time.Second; i++ {
				a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 1+i), harv)
				if a.status == 403 {
					bannedAt = time.Since(start)
					if !strings.Contains(a.body, `"rule":"ban","facet":"account"`) {
						t.Fatalf("refusal %s", a.body)
					}
					break
				}
			}
			if bannedAt == 0 || bannedAt > 5*time.Second {
				t.Fatalf("machine-speed harvester banned after %v, want within 5s", bannedAt)
			}
			t.Logf("%s: banned %v after its first request", backend, bannedAt)
			bans := adminDo(t, g, "GET", "/v1/bans", "").body
			if !strings.Contains(bans, `"facet":"account","value":"777","reason":"detector contact-velocity (velocity): contact of 21 distinct people within 10s (limit 20); offence 1, banned 10m0s","by":"detector"`) {
				t.Fatalf("ban list: %s", bans)
			}
			// A real user on the same address is not banned with it.
			user := map[string]string{"Authorization": "Bearer " + token(t, "12")}
			if a := do(t, c, "GET", g.url+"/v1/users/5", user); a.status != 200 || !contactServed(t, a) {
				t.Fatalf("neighbour: %d %s", a.status, a.body)
			}
			// Fan-out: opening everyone on one follower list.
			fan := map[string]string{"Authorization": "Bearer " + token(t, "31")}
			var ids []string
			for who := 1; who < 200 && len(ids) < 8; who++ {
				list := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d/followers?limit=50", g.url, who), fan)
				if list.status != 200 {
					t.Fatalf("list: %d %s", list.status, list.body)
				}
				ids = ids[:0]
				for _, part := range strings.Split(list.body, `"id":"`)[1:] {
					ids = append(ids, part[:strings.IndexByte(part, '"')])
				}
			}
			if len(ids) < 8 {
				t.Fatalf("no follower list of 8 among profiles 1-199")
			}
			opened := 0
			for _, id := range ids {
				a := do(t, c, "GET", g.url+"/v1/users/"+id, fan)
				if a.status == 403 {
					break
				}
				opened++
				time.Sleep(50 * time.Millisecond) // slower than the velocity rule
			}
			// The rule fires on the 6th open (limit 5), whatever the pace:
			// its ban's reason says so. How many more opens pass before the
			// ban reaches the gateway is the machine's pace (the detector
			// runs on the recording's goroutine, 5 ms ticks), not asserted:
			// a loaded machine let a 7th and 8th through.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				bans = adminDo(t, g, "GET", "/v1/bans", "").body
				if strings.Contains(bans, `"value":"31","reason":"detector list-fanout`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no fan-out ban after %d opened", opened)
				}
			}
			if !strings.Contains(bans, `"value":"31","reason":"detector list-fanout (fanout): contact of 6 distinct people opened from one list answer within 10m0s (limit 5)`) || opened < 6 {
				t.Errorf("fan-out ban after %d opened from one list: %s; want it at the 6th (limit 5)", opened, bans)
			}
			m := adminDo(t, g, "GET", "/metrics", "").body
			for _, want := range []string{`warden_detect_bans_total{facet="account",rule="contact-velocity"} 1`, `warden_shadow_total{action="ban",rule="list-fanout-shadow"}`} {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			// warden ban rm lifts it.
			if a := adminDo(t, g, "DELETE", "/v1/bans/account/777", ""); a.status/100 != 2 {
				t.Fatalf("ban rm: %d %s", a.status, a.body)
			}
			if a := do(t, c, "GET", g.url+"/v1/users/3", harv); a.status != 200 {
				t.Fatalf("after ban rm: %d %s", a.status, a.body)
			}
		})
	}
}

// An anonymous client retrying its refusals at once gets its address
// banned for anonymous requests only: an account behind the same address
// is still served, with contact details (issue 22: no harm to neighbours
// behind a shared address). On both stores.
func TestAnonymousBanSparesAccountsBehindAddress(t *testing.T) {
	platform := startPlatform(t, 2000)
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			g := startGateway(t, strings.Replace(detectConfig(storeSection(t, backend)), "ration:", `rate_limits:
  - {name: per-ip, facet: ip, rate: 1/m, burst: 2}
ration:`, 1)+`    - {name: persistence-anonymous, kind: persistence, facet: ip, limit: 5, window: 10s}
`, platform)
			c := clientFrom("127.0.8.9")
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				a := do(t, c, "GET", g.url+"/v1/users/1", nil)
				if a.status == 403 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("anonymous client never banned: %d %s", a.status, a.body)
				}
			}
			bans := adminDo(t, g, "GET", "/v1/bans", "").body
			if !strings.Contains(bans, `"facet":"ip","value":"127.0.8.9"`) || !strings.Contains(bans, `"anonymous":true`) {
				t.Fatalf("ban list: %s", bans)
			}
			user := map[string]string{"Authorization": "Bearer " + token(t, "12")}
			for i := range 2 {
				if a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 5+i), user); a.status != 200 || !contactServed(t, a) {
					t.Fatalf("account behind the anonymously banned address: %d %s", a.status, a.body)
				}
			}
			if a := do(t, c, "GET", g.url+"/v1/users/1", nil); a.status != 403 {
				t.Fatalf("anonymous request after the ban: %d %s", a.status, a.body)
			}
		})
	}
}

// An allow entry prevents the detector's bans (README), and allow is
// reloadable: a reload that adds one is accepted, so the detector must
// take it too. It kept the allow list of its start, so an account allowed
// by a reload (README's remedy for a value banned in error: allow it,
// reload, ban rm) was banned again by the detector.
func TestReloadedAllowReachesDetector(t *testing.T) {
	platform := startPlatform(t, 2000)
	cfg := detectConfig("")
	g := startGateway(t, cfg, platform)
	if err := os.WriteFile(g.config, []byte(cfg+"allow:\n  - {name: cleared, accounts: [\"778\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, g.p, "config reloaded")
	c := clientFrom("127.0.8.2")
	auth := map[string]string{"Authorization": "Bearer " + token(t, "778")}
	// Past the velocity rule's 20 distinct people in 10 s.
	for i := range 40 {
		if a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 1+i), auth); a.status != 200 {
			t.Fatalf("allowed account, request %d: %d %s", i, a.status, a.body)
		}
	}
	time.Sleep(500 * time.Millisecond) // the detector's ticks: a ban would reach the store meanwhile
	if bans := adminDo(t, g, "GET", "/v1/bans", "").body; strings.Contains(bans, `"value":"778"`) {
		t.Fatalf("the account the reload allowed was banned: %s", bans)
	}
	// The allow list is the reloaded one, not a list of every entry seen:
	// another account is still banned.
	other := map[string]string{"Authorization": "Bearer " + token(t, "779")}
	for i := range 40 {
		do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 100+i), other)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(adminDo(t, g, "GET", "/v1/bans", "").body, `"value":"779"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an account no allow entry names was not banned")
		}
	}
}
