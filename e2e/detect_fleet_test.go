package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// detectFleetConfig: two gateways' detector on one Redis; a first ban of
// 3 s so a test sees the second offence.
func detectFleetConfig(addr string) string {
	return `log: {format: json, level: info}
identity:
  account: {secret_env: LAB_JWT_SECRET}
store:
  backend: redis
  redis: {addrs: [` + addr + `]}
inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
      lookup: id
ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: 100000, window: 24h}
detect:
  enabled: true
  ban_durations: [3s, 1h]
  rules:
    - {name: contact-velocity, kind: velocity, facet: account, limit: 20, window: 30s}
`
}

// A harvester alternating between two gateways on one Redis, never more
// than 20 people on either (the limit), is banned on both within 5 s of
// its first request: the fleet counts together. Its second offence, on a
// gateway restarted meanwhile, gets the second duration.
func TestDetectorFleet(t *testing.T) {
	rs := redistest.Start(t)
	platform := startPlatform(t, 2000)
	cfg := detectFleetConfig(rs.Addr())
	gws := []*gw{startGateway(t, cfg, platform), startGateway(t, cfg, platform)}
	c := clientFrom("127.0.9.1")
	harv := map[string]string{"Authorization": "Bearer " + token(t, "888")}
	start := time.Now()
	var bannedAt time.Duration
	sent := 0
	// 40 people at most: 20 per gateway, never past the limit on one.
	for i := range 40 {
		a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", gws[i%2].url, 1+i), harv)
		sent++
		if a.status == 403 {
			bannedAt = time.Since(start)
			if !strings.Contains(a.body, `"rule":"ban","facet":"account"`) {
				t.Fatalf("refusal %s", a.body)
			}
			break
		}
		if a.status != 200 {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	if bannedAt == 0 {
		// The last flush may still be on its way.
		for bannedAt == 0 && time.Since(start) < 5*time.Second {
			if a := do(t, c, "GET", gws[0].url+"/v1/users/1", harv); a.status == 403 {
				bannedAt = time.Since(start)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if bannedAt == 0 || bannedAt > 5*time.Second {
		t.Fatalf("harvester over the fleet's limit, under each gateway's, banned after %v (%d requests), want within 5s", bannedAt, sent)
	}
	t.Logf("banned %v after its first request, at request %d of at most 40", bannedAt, sent)
	for i, g := range gws {
		if a := do(t, c, "GET", g.url+"/v1/users/2", harv); a.status != 403 {
			t.Fatalf("gateway %d: %d while banned", i+1, a.status)
		}
	}
	bans := adminDo(t, gws[1], "GET", "/v1/bans", "").body
	if !strings.Contains(bans, `"value":"888","reason":"detector contact-velocity (velocity): contact of 21 distinct people within 30s (limit 20), counted on every gateway; offence 1, banned 3s"`) {
		t.Fatalf("ban list: %s", bans)
	}
	// Restart the first gateway: its own counts and history are gone, the
	// fleet's are not. Past the 3 s ban, the next person read is the
	// second offence.
	gws[0].p.Stop()
	gws[0] = startGateway(t, cfg, platform)
	time.Sleep(time.Until(start.Add(bannedAt + 3*time.Second + 100*time.Millisecond)))
	second := time.Now()
	// At most 20 people, all on the restarted gateway: its own count
	// never passes the limit.
	banned := false
	for i := 0; !banned && time.Since(second) < 5*time.Second; i++ {
		id := 100 + min(i, 19)
		banned = do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", gws[0].url, id), harv).status == 403
		if i >= 19 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !banned {
		t.Fatalf("past the first ban, more people on the restarted gateway: not banned again within 5s")
	}
	t.Logf("second offence banned %v after the first ban ended", time.Since(second))
	bans = adminDo(t, gws[0], "GET", "/v1/bans", "").body
	if !strings.Contains(bans, `"value":"888","reason":"detector contact-velocity (velocity): contact of`) || !strings.Contains(bans, `offence 2, banned 1h0m0s"`) {
		t.Fatalf("second offence after a restart: %s", bans)
	}
	m := adminDo(t, gws[0], "GET", "/metrics", "").body
	for _, want := range []string{`warden_detect_store_calls_total{op="observe"}`, `warden_detect_store_calls_total{op="offend"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, `warden_detect_store_errors_total{`) {
		t.Errorf("store errors:\n%s", m)
	}
}
