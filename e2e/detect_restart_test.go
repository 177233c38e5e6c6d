package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A repeat offender's next ban after a restart is the escalated one: the
// detector's ban history (and its windows) go into the memory store's
// snapshot and come back at start, after kill -9 (as of the last
// snapshot) as after a graceful stop. Before, the history lived in the
// detector's memory only and the first ban after a restart was the first
// length again.
func TestDetectorRestartEscalates(t *testing.T) {
	platform := startPlatform(t, 2000)
	for _, stop := range []string{"kill-9", "graceful"} {
		t.Run(stop, func(t *testing.T) {
			cfg := strings.Replace(detectConfig(fmt.Sprintf("store:\n  memory: {dir: %s, snapshot_interval: 1s}\n", t.TempDir())),
				"detect:\n  enabled: true\n", "detect:\n  enabled: true\n  ban_durations: [3s, 1h]\n", 1)
			g := startGateway(t, cfg, platform)
			harv := map[string]string{"Authorization": "Bearer " + token(t, "778")}
			c := clientFrom("127.0.8.2")
			next := 1
			// untilRefused reads profiles at machine speed until refused,
			// within 20 s.
			untilRefused := func(g *gw) {
				t.Helper()
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); next++ {
					if a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 1+next%2000), harv); a.status == 403 {
						return
					}
				}
				t.Fatal("a machine-speed harvester not refused within 20s")
			}
			untilRefused(g)
			if bans := adminDo(t, g, "GET", "/v1/bans", "").body; !strings.Contains(bans, `"value":"778","reason":"detector contact-velocity (velocity): contact of 21 distinct people within 10s (limit 20); offence 1, banned 3s"`) {
				t.Fatalf("first ban: %s", bans)
			}
			if stop == "kill-9" {
				awaitSnapshot(t, g, time.Now())
				stopGateway(t, g, syscall.SIGKILL)
			} else {
				stopGateway(t, g, syscall.SIGTERM)
			}
			g2 := startGateway(t, cfg, platform)
			waitFor(t, g2.p, `"msg":"detector state restored","ban_histories":1`)
			waitFor(t, g2.p, `"detector_ban_histories":1,`)
			// The first ban (3 s, back from the ban log) runs out; the
			// harvester goes on and is banned again. The first ban this
			// gateway writes must be offence 2, for the second length
			// (without the history it was offence 1, 3 s again).
			var list struct {
				Bans []struct{ Until time.Time }
			}
			if err := json.Unmarshal([]byte(adminDo(t, g2, "GET", "/v1/bans", "").body), &list); err != nil || len(list.Bans) != 1 {
				t.Fatalf("bans after the restart: %+v %v", list, err)
			}
			time.Sleep(time.Until(list.Bans[0].Until) + 100*time.Millisecond)
			untilRefused(g2)
			if bans := adminDo(t, g2, "GET", "/v1/bans", "").body; !strings.Contains(bans, `"value":"778","reason":"detector contact-velocity (velocity): contact of 21 distinct people within 10s (limit 20); offence 2, banned 1h0m0s"`) {
				t.Fatalf("the repeat offender's first ban after the restart: %s; want offence 2 for 1h", bans)
			}
		})
	}
}
