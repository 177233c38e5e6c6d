package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/audience"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/lab/platform"
	"github.com/warden-gw/warden/internal/ledger"
)

// audienceFixture is a lab platform (its requests counted), an account
// with followers, and a ledger directory in which two of its followers
// and one stranger were served its content.
func audienceFixture(t *testing.T) (up string, requests *atomic.Int64, acct, dir string) {
	t.Helper()
	const secret = "audience-split-test-secret-0123456789"
	p, err := platform.New(platform.Options{Profiles: 2000, Seed: 3, JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	requests = &atomic.Int64{}
	h := p.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tok, err := platform.MintToken(secret, "1", time.Now().Add(-24*time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_TEST_AUDIENCE_SPLIT_TOKEN", tok)
	var fol []int32
	for id := 1; id <= p.Profiles(); id++ {
		if len(p.Followers(id)) > 10 {
			acct, fol = strconv.Itoa(id), p.Followers(id)
			break
		}
	}
	follows := map[int32]bool{}
	for _, f := range fol {
		follows[f] = true
	}
	stranger := p.Profiles()
	for follows[int32(stranger)] || strconv.Itoa(stranger) == acct {
		stranger--
	}
	dir = t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i, viewer := range []int{int(fol[0]), int(fol[1]), stranger} {
		a := &inspect.Access{RequestID: fmt.Sprintf("split%019d", i), Route: "GET /v1/feed", Status: 200, Time: time.Now().Add(-time.Minute),
			Classes: []string{"post"}, Records: []inspect.Record{{ID: "post-" + acct, Classes: 1}}, Authors: []string{acct}}
		a.Identity = identify.Identity{Account: strconv.Itoa(viewer)}
		l.Record(a)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return srv.URL, requests, acct, dir
}

// TestAudiencePrivateSplitNotAnsweredWithout: a DP audience asked first
// with --no-ledger (no split of the reach) and then with the ledger is two
// questions: the second is answered with the split the asker asked for,
// not the first answer, without it, as a free repeat.
func TestAudiencePrivateSplitNotAnsweredWithout(t *testing.T) {
	up, _, acct, dir := audienceFixture(t)
	ctx := context.Background()
	run := func(extra ...string) *audience.PrivateResult {
		t.Helper()
		args := append([]string{"--accounts", acct, "--upstream", up, "--credential-env", "WARDEN_TEST_AUDIENCE_SPLIT_TOKEN",
			"--rate", "1000", "--ledger", dir, "--dp-epsilon", "0.5", "--researcher", "split-test", "--json"}, extra...)
		var w bytes.Buffer
		if err := runAudience(ctx, args, &w, io.Discard); err != nil {
			t.Fatalf("audience %v: %v", extra, err)
		}
		var res audience.PrivateResult
		if err := json.Unmarshal(w.Bytes(), &res); err != nil {
			t.Fatalf("audience %v: %v\n%s", extra, err, w.Bytes())
		}
		return &res
	}
	if res := run("--no-ledger"); res.Reach != nil {
		t.Fatalf("--no-ledger: a split of the reach %+v", res.Reach)
	}
	res := run()
	if res.Reach == nil {
		t.Fatalf("with the ledger, after the same accounts were asked with --no-ledger: no split of the reach (repeat %v)", res.Budget.Repeat)
	}
	if res.Budget.Repeat {
		t.Errorf("with the ledger: answered as a repeat of the question without it")
	}
	// Asked again as written, each is a repeat.
	if again := run(); !again.Budget.Repeat || again.Reach == nil {
		t.Errorf("with the ledger again: repeat %v, split %v", again.Budget.Repeat, again.Reach != nil)
	}
	if again := run("--no-ledger"); !again.Budget.Repeat || again.Reach != nil {
		t.Errorf("--no-ledger again: repeat %v, split %v", again.Budget.Repeat, again.Reach != nil)
	}
}

// TestAudienceLedgerCheckedBeforePaging: a ledger the split cannot read
// fails the command before any follower list is paged, not after the
// (rate-bounded, possibly hour-long) paging.
func TestAudienceLedgerCheckedBeforePaging(t *testing.T) {
	up, requests, acct, _ := audienceFixture(t)
	bad := t.TempDir() // not a ledger directory at all
	if err := os.WriteFile(filepath.Join(bad, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	err := runAudience(context.Background(), []string{"--accounts", acct, "--upstream", up, "--credential-env", "WARDEN_TEST_AUDIENCE_SPLIT_TOKEN",
		"--rate", "1000", "--ledger", bad}, &w, io.Discard)
	if err == nil {
		t.Fatalf("audience on %s: no error\n%s", bad, w.Bytes())
	}
	if !strings.Contains(err.Error(), bad) {
		t.Errorf("error %q does not name %s", err, bad)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d follower list requests sent before the ledger was found unreadable (%v)", n, err)
	}
}

// TestAudienceNoCredentialNamesTheVariable: with no --credential-env and
// the config's account secret variable unset, the error names that
// variable, the one thing the user has to set.
func TestAudienceNoCredentialNamesTheVariable(t *testing.T) {
	t.Setenv("LAB_JWT_SECRET", "")
	err := runAudience(context.Background(), []string{"--config", "../../examples/lab.yaml", "--accounts", "17",
		"--upstream", "http://127.0.0.1:1", "--no-ledger"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LAB_JWT_SECRET") {
		t.Errorf("audience without a credential: %v; want an error naming LAB_JWT_SECRET", err)
	}
}

// TestAudiencePrivateBudgetDirIsALedger: a DP audience with --no-ledger
// keeps its budget in the config's ledger.dir, made for it when missing
// (the privacy files alone); the queries of that config then read it as
// the empty ledger it is, not "not a ledger directory".
func TestAudiencePrivateBudgetDirIsALedger(t *testing.T) {
	up, _, acct, _ := audienceFixture(t)
	dir := filepath.Join(t.TempDir(), "ledger") // not there yet
	cfg := filepath.Join(t.TempDir(), "warden.yaml")
	if err := os.WriteFile(cfg, []byte("upstream: {url: \""+up+"\"}\nledger: {dir: \""+dir+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	args := []string{"--config", cfg, "--accounts", acct, "--credential-env", "WARDEN_TEST_AUDIENCE_SPLIT_TOKEN", "--rate", "1000"}
	if err := runAudience(ctx, append(args, "--no-ledger", "--dp-epsilon", "0.5", "--researcher", "dir-test"), io.Discard, io.Discard); err != nil {
		t.Fatalf("DP audience --no-ledger: %v", err)
	}
	if err := runAudience(ctx, args, io.Discard, io.Discard); err != nil {
		t.Errorf("audience after a DP answer made %s: %v", dir, err)
	}
	var w bytes.Buffer
	if err := runReach(ctx, []string{"--config", cfg, "--authors", acct, "--json"}, &w, io.Discard); err != nil {
		t.Errorf("reach after a DP answer made %s: %v", dir, err)
	} else if !strings.Contains(w.String(), `"reach": 0`) {
		t.Errorf("reach of an empty ledger: %s", w.String())
	}
}
