package main

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/ledger"
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
