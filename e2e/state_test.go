package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/lab/platform"
)

// stateConfig is a gateway whose memory store is kept in dir: young
// accounts (under a day old) get 2 contacts a day, and a per-ip limit
// high enough never to refuse (it is still counted on every request).
func stateConfig(dir, interval string) string {
	return fmt.Sprintf(`log: {format: text, level: info}
identity:
  account: {secret_env: LAB_JWT_SECRET}
store:
  memory: {dir: %s, snapshot_interval: %s}
rate_limits:
  - {name: per-ip, facet: ip, rate: 100000/s, burst: 100000}
`+profileRoute+`ration:
  budgets:
    - name: contact-account
      facet: account
      class: contact
      limit: 200
      window: 24h
      account_age: [{younger_than: 24h, limit: 2}]
`, dir, interval)
}

// youngToken is a token of an account made an hour ago.
func youngToken(t *testing.T, sub string) string {
	tok, err := platform.MintToken("lab-secret", sub, time.Now().Add(-time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// spendYoung has a young account spend its 2 contacts, and checks that the
// third is masked.
func spendYoung(t *testing.T, g *gw, tok string) {
	t.Helper()
	c := clientFrom("127.0.6.1")
	for id, want := range map[int]bool{11: true, 12: true} {
		if got := contactServed(t, do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": "Bearer " + tok})); got != want {
			t.Fatalf("young account, profile %d: contact served %v, want %v", id, got, want)
		}
	}
	if contactServed(t, do(t, c, "GET", g.url+"/v1/users/13", map[string]string{"Authorization": "Bearer " + tok})) {
		t.Fatal("young account: a third contact served before the restart")
	}
}

// checkYoung checks after a restart that the young account's budget is
// still spent: profiles it was served still come whole, a new one masked.
func checkYoung(t *testing.T, g *gw, tok string) {
	t.Helper()
	c := clientFrom("127.0.6.2")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	if !contactServed(t, do(t, c, "GET", g.url+"/v1/users/11", auth)) {
		t.Fatal("after the restart: a profile the young account was served is masked")
	}
	if contactServed(t, do(t, c, "GET", g.url+"/v1/users/14", auth)) {
		t.Fatal("after the restart: the young account got a fresh budget (profile 14 served whole)")
	}
}

var lastSnapshotRE = regexp.MustCompile(`(?m)^warden_store_snapshot_last_timestamp_seconds (\S+)$`)

// awaitSnapshot waits for a snapshot taken after since.
func awaitSnapshot(t *testing.T, g *gw, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m := lastSnapshotRE.FindStringSubmatch(adminDo(t, g, "GET", "/metrics", "").body)
		if m != nil {
			if v, _ := strconv.ParseFloat(m[1], 64); v > float64(since.UnixNano())/1e9 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no snapshot within 15s")
}

// stopGateway stops g with sig (SIGKILL: no last snapshot; SIGTERM: a
// graceful stop, the last snapshot taken) and waits for it to exit.
func stopGateway(t *testing.T, g *gw, sig syscall.Signal) {
	t.Helper()
	if err := g.p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway still running 20s after %v", sig)
	}
}

// postBan asks for a ban and reports whether the admin API acknowledged it;
// a refused connection (the gateway killed) is no acknowledgement.
func postBan(admin, ip string) bool {
	body := fmt.Sprintf(`{"facet":"ip","value":%q,"reason":"e2e","ttl":"24h"}`, ip)
	req, _ := http.NewRequest("POST", admin+"/v1/bans", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated
}

func listBans(t *testing.T, g *gw) map[string]bool {
	t.Helper()
	a := adminDo(t, g, "GET", "/v1/bans?limit=100000", "")
	var l struct {
		Bans []struct{ Facet, Value string }
	}
	if err := json.Unmarshal([]byte(a.body), &l); err != nil {
		t.Fatalf("ban list %q: %v", a.body, err)
	}
	out := map[string]bool{}
	for _, b := range l.Bans {
		out[b.Facet+"="+b.Value] = true
	}
	return out
}

// The gateway is killed (SIGKILL) while requests run and bans are being
// added: after a restart every ban the admin API acknowledged is there, and
// budgets are as of the last snapshot.
func TestKill9KeepsState(t *testing.T) {
	platform := startPlatform(t, 2000)
	cfg := stateConfig(t.TempDir(), "1s")
	g := startGateway(t, cfg, platform)

	young := youngToken(t, "901")
	spendYoung(t, g, young)
	awaitSnapshot(t, g, time.Now())

	// Load: readers from several addresses, and bans added one after
	// another, until and after the kill.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.7.%d", w+1))
			c.Timeout = 2 * time.Second
			tok := token(t, strconv.Itoa(100+w))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/users/%d", g.url, 100+i%500), nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
					served.Add(1)
				}
			}
		}()
	}
	var mu sync.Mutex
	var acked []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ip := fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
			if postBan(g.admin, ip) {
				mu.Lock()
				acked = append(acked, ip)
				mu.Unlock()
			}
		}
	}()
	time.Sleep(2 * time.Second)
	stopGateway(t, g, syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond) // requests and bans still try the dead gateway
	close(stop)
	wg.Wait()
	if len(acked) < 10 || served.Load() < 100 {
		t.Fatalf("too little load before the kill: %d bans acknowledged, %d answers", len(acked), served.Load())
	}

	g2 := startGateway(t, cfg, platform)
	bans := listBans(t, g2)
	for _, ip := range acked {
		if !bans["ip="+ip] {
			t.Fatalf("acknowledged ban on %s lost by kill -9 (%d of %d acknowledged bans present)", ip, len(bans), len(acked))
		}
	}
	if a := do(t, clientFrom(acked[0]), "GET", g2.url+"/v1/users/1", nil); a.status != http.StatusForbidden {
		t.Fatalf("a banned address after the restart: %d %s", a.status, a.body)
	}
	checkYoung(t, g2, young)
	if out := g2.p.Output(); !strings.Contains(out, "state restored") || !strings.Contains(out, "budgets=") {
		t.Fatalf("serve did not log what it restored:\n%s", out)
	}
	t.Logf("%d bans acknowledged before and around the kill, %d answers served", len(acked), served.Load())
}

// A graceful stop loses nothing, even what changed after the last
// periodic snapshot (the interval here is an hour).
func TestGracefulStopKeepsState(t *testing.T) {
	platform := startPlatform(t, 2000)
	cfg := stateConfig(t.TempDir(), "1h")
	g := startGateway(t, cfg, platform)
	young := youngToken(t, "902")
	spendYoung(t, g, young)
	if a := adminDo(t, g, "POST", "/v1/bans", `{"facet":"ip","value":"127.0.8.9","reason":"e2e","ttl":"24h"}`); a.status != http.StatusCreated {
		t.Fatalf("ban: %d %s", a.status, a.body)
	}
	stopGateway(t, g, syscall.SIGTERM)
	if !strings.Contains(g.p.Output(), "state saved") {
		t.Fatalf("no last snapshot on a graceful stop:\n%s", g.p.Output())
	}
	g2 := startGateway(t, cfg, platform)
	if !listBans(t, g2)["ip=127.0.8.9"] {
		t.Fatal("ban lost by a graceful stop")
	}
	checkYoung(t, g2, young)
}

// Without store.memory.dir, serve says that the state is in memory only.
func TestMemoryOnlyIsSaid(t *testing.T) {
	g := startGateway(t, "log: {format: text, level: info}\n", startPlatform(t, 10))
	// Log lines are written from a goroutine of their own: the warning
	// may follow the ready line.
	waitFor(t, g.p, "store state in memory only")
}
