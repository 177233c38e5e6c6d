package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

func TestReachApprox(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		e := &ledger.Entry{Time: now, Route: "GET /v1/feed", Status: 200, Authors: []string{"7", "8"},
			Records: []ledger.Record{{ID: "p1"}, {ID: "p2"}}}
		e.Identity[identify.FacetAccount-1] = fmt.Sprint(i % 20)
		l.Add(e)
	}
	l.Close()
	var out bytes.Buffer
	if err := runReach(context.Background(), []string{"--ledger", dir, "--authors", "7,8", "--approx", "--json"}, &out, &out); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	var v struct {
		Reach       int   `json:"reach"`
		Impressions int   `json:"impressions"`
		Exact       *bool `json:"exact"`
		ErrorBound  struct {
			Low, High int
		} `json:"error_bound"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if v.Exact == nil || *v.Exact || v.Reach != 20 || v.Impressions != 100 || v.ErrorBound.Low > 20 || v.ErrorBound.High < 20 {
		t.Errorf("approx answer %s", out.String())
	}
	out.Reset()
	if err := runReach(context.Background(), []string{"--ledger", dir, "--authors", "7", "--approx"}, &out, &out); err != nil || !strings.Contains(out.String(), "BOUND") {
		t.Errorf("table: %v\n%s", err, out.String())
	}
	if err := runReach(context.Background(), []string{"--ledger", dir, "--authors", "7", "--approx", "--dp-epsilon", "1", "--researcher", "r"}, &out, &out); err == nil {
		t.Error("--approx with DP: no error")
	}
}
