package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/audience"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/lab/platform"
	"github.com/warden-gw/warden/internal/ledger"
)

// TestAudienceSplitOnClickHouse: warden audience splits the accounts'
// reach into followers and not from the fleet's ledger in ClickHouse
// (--clickhouse) as from a directory holding the same Accesses: the same
// JSON, the split counting the accounts' viewers in the window, without
// anonymous viewers, viewers of other authors or Accesses before --from.
func TestAudienceSplitOnClickHouse(t *testing.T) {
	srv, sink := fleetLedger(t)
	ctx := context.Background()
	const secret = "audience-ch-test-secret-0123456789"
	p, err := platform.New(platform.Options{Profiles: 3000, Seed: 7, JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(p.Handler())
	t.Cleanup(up.Close)
	tok, err := platform.MintToken(secret, "1", time.Now().Add(-24*time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_TEST_AUDIENCE_TOKEN", tok)
	var accts []string
	follows := map[string]bool{}
	for id := 1; id <= p.Profiles() && len(accts) < 2; id++ {
		if len(p.Followers(id)) > 60 {
			accts = append(accts, strconv.Itoa(id))
			for _, f := range p.Followers(id) {
				follows[fmt.Sprint(f)] = true
			}
		}
	}
	fol := p.Followers(mustInt(accts[0]))

	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	n := 0
	see := func(ago time.Duration, viewer, author string) {
		n++
		a := &inspect.Access{RequestID: fmt.Sprintf("aud%021d", n), Route: "GET /v1/feed", Status: 200, Time: now.Add(-ago), Classes: []string{"post"},
			Records: []inspect.Record{{ID: "post-" + author, Classes: 1}}, Authors: []string{author}}
		a.Identity = identify.Identity{Account: viewer}
		l.Record(a)
		sink.Record(a)
	}
	// In the window: ten followers (one twice) and five people who follow
	// neither account; an anonymous viewer; a follower who saw another
	// author only. Before it: a stranger.
	for _, f := range fol[:10] {
		see(time.Minute, fmt.Sprint(f), accts[0])
	}
	see(time.Minute, fmt.Sprint(fol[0]), accts[1])
	see(time.Minute, "", accts[0])
	see(time.Minute, fmt.Sprint(fol[10]), "999999")
	strangers := 0
	for id := p.Profiles(); strangers < 6; id-- {
		if !follows[fmt.Sprint(id)] {
			ago := time.Minute
			if strangers == 5 {
				ago = 3 * time.Hour
			}
			see(ago, fmt.Sprint(id), accts[strangers%2])
			strangers++
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}

	run := func(where ...string) (string, *audience.Result) {
		t.Helper()
		args := append([]string{"--accounts", accts[0] + "," + accts[1], "--dose", "--upstream", up.URL, "--credential-env", "WARDEN_TEST_AUDIENCE_TOKEN",
			"--from", "2h", "--json"}, where...)
		var w bytes.Buffer
		if err := runAudience(ctx, args, &w, os.Stderr); err != nil {
			t.Fatalf("audience %v: %v", where, err)
		}
		var res audience.Result
		if err := json.Unmarshal(w.Bytes(), &res); err != nil {
			t.Fatalf("audience %v: %v\n%s", where, err, w.Bytes())
		}
		// The window's ends are read from the clock at each run.
		if res.Reach == nil {
			t.Fatalf("audience %v: no split of the reach", where)
		}
		s := *res.Reach
		s.From, s.To = nil, nil
		res.Reach = &s
		b, _ := json.Marshal(res)
		return string(b), &res
	}
	local, lr := run("--ledger", dir)
	fleet, _ := run("--clickhouse", srv.Addr())
	if local != fleet {
		t.Errorf("audience:\n--ledger     %s\n--clickhouse %s", local, fleet)
	}
	if s := lr.Reach; s.Reach != 15 || s.Followers != 10 || s.NonFollowers != 5 || lr.Audience < 120 {
		t.Errorf("split %+v of an audience of %d, want reach 15: 10 followers, 5 not", s, lr.Audience)
	}
}

func mustInt(s string) int { n, _ := strconv.Atoi(s); return n }
