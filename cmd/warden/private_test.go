package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/lab/demo"
	"github.com/warden-gw/warden/internal/lab/sim"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/reach"
)

// TestPrivateQuerySameQuestion: a DP question spelled with a flag at its
// default (--by account, --dose=false) is the question without it, so it
// is answered again for free with the same answer rather than charged and
// answered with new noise.
func TestPrivateQuerySameQuestion(t *testing.T) {
	base := url.Values{"authors": {"b,a"}, "dp-epsilon": {"0.5"}, "researcher": {"alice"}}
	want, err := privateQuery(t.TempDir(), nil, "reach", base)
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []url.Values{
		{"by": {"account"}},
		{"dose": {"false"}},
		{"approx": {"false"}},
		{"by": {"account"}, "dose": {"false"}},
	} {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for k, vs := range extra {
			v[k] = vs
		}
		got, err := privateQuery(t.TempDir(), nil, "reach", v)
		if err != nil {
			t.Fatal(err)
		}
		if got.Query != want.Query {
			t.Errorf("%v: question %q, want %q (the same question)", extra, got.Query, want.Query)
		}
	}
	// Not the same question: another facet, a dose asked.
	for _, extra := range []url.Values{{"by": {"ip"}}, {"dose": {"true"}}} {
		v := url.Values{"authors": {"a,b"}, "dp-epsilon": {"0.5"}, "researcher": {"alice"}}
		for k, vs := range extra {
			v[k] = vs
		}
		got, err := privateQuery(t.TempDir(), nil, "reach", v)
		if err != nil {
			t.Fatal(err)
		}
		if got.Query == want.Query {
			t.Errorf("%v: the same question as without it", extra)
		}
	}
}

// TestReachBoolParams: the admin API's dose and approx are true or false;
// another spelling (dose=1, dose=yes) is an error, not a question answered
// without the dose it asked for.
func TestReachBoolParams(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	src := localLedger(dir)
	for _, p := range []string{"dose", "approx"} {
		for _, val := range []string{"1", "yes", "TRUE"} {
			_, err := answerQuery(t.Context(), src, dir, nil, "reach", url.Values{"authors": {"a"}, p: {val}}, time.Now())
			if !errors.Is(err, admin.ErrBadRequest) {
				t.Errorf("%s=%s: %v, want a bad request", p, val, err)
			}
		}
	}
	for _, val := range []string{"true", "false", ""} {
		if _, err := answerQuery(t.Context(), src, dir, nil, "reach", url.Values{"authors": {"a"}, "dose": {val}}, time.Now()); err != nil {
			t.Errorf("dose=%q: %v", val, err)
		}
	}
}

// TestDemoQuestionIsTheCommandLines: the demo's DP reach, asked again on
// the command line (warden reach --authors ... --dp-epsilon 0.5
// --researcher demo-researcher), is the same question: the same figures,
// charged nothing.
func TestDemoQuestionIsTheCommandLines(t *testing.T) {
	dir, _ := damageLedger(t)
	f, err := demo.LedgerFigures(dir, 0, &sim.Served{Authors: []string{"9", "7", "10"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Private == nil || f.Private.Budget.Repeat {
		t.Fatalf("the demo's answer: %+v, want a first answer", f.Private)
	}
	var out, errb bytes.Buffer
	err = runReach(t.Context(), []string{"--ledger", dir, "--json", "--authors", "10,7,9", "--dp-epsilon", "0.5", "--researcher", demo.DemoResearcher}, &out, &errb)
	if err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	var got reach.PrivateResult
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Budget.Repeat || got.Budget.Spent != f.Private.Budget.Spent {
		t.Errorf("the command line's repeat: repeat %v, spent %s; want a repeat, spent still %s", got.Budget.Repeat, got.Budget.Spent, f.Private.Budget.Spent)
	}
	if got.Reach != f.Private.Reach || got.Interval != f.Private.Interval {
		t.Errorf("the command line's answer %d %v, the demo's %d %v: want the same", got.Reach, got.Interval, f.Private.Reach, f.Private.Interval)
	}
}
