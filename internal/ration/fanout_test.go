package ration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/inspect"
)

func fanCfg(limit int, hold time.Duration) Config {
	return Config{
		Budgets:      []BudgetConfig{contactBudget("contact-day", "account", 200)},
		Unreferenced: &Unreferenced{}, // the link memory: facet, ttl
		FanoutCap:    &FanoutCap{Limit: limit, Window: 10 * time.Minute, Hold: hold, Classes: []string{"contact"}},
	}
}

// TestFanoutCap: at its boundary per answer: the limit-th person opened from
// one search page is served, the next masked with the rule named in the
// Access and not counted by the budgets; a second search page, the same
// search fetched again (each answer fetched is its own), the identity's own
// lists and re-views (by id or by username) are not capped.
func TestFanoutCap(t *testing.T) {
	l := loadLab(t)
	e := newEnv(t, fanCfg(3, 0), l.Inspect)
	id := account("7")
	e.get(t0, id, "/v1/search?q=us", followers(100, 101, 102, 103, 104, 105))
	e.get(t0, id, "/v1/search?q=ab", followers(200, 201, 202, 203))
	e.get(t0, id, "/v1/users/7/followers", followers(300, 301, 302, 303, 304))
	e.get(t0, id, "/v1/users/9/followers", followers(400, 401, 402, 403))
	steps := []struct {
		path   string
		served bool
	}{
		{"/v1/users/100", true},
		{"/v1/users/by-username/user_101", true},
		{"/v1/users/102", true},
		{"/v1/users/103", false}, // the 4th from one search page
		{"/v1/users/101", true},  // a re-view is free, by id as by username
		{"/v1/users/200", true},  // another search page
		{"/v1/users/201", true},  //
		{"/v1/users/300", true},  // its own followers: social, never capped
		{"/v1/users/301", true}, {"/v1/users/302", true}, {"/v1/users/303", true}, {"/v1/users/304", true},
		{"/v1/users/400", true}, {"/v1/users/401", true}, {"/v1/users/402", true}, // a stranger's list
		{"/v1/users/403", false},
		{"/v1/search?q=us", true}, // back to the first page, fetched again: a new answer
		{"/v1/users/104", true},
		{"/v1/users/103", true},
		{"/v1/users/by-username/user_105", true},
		{"/v1/users/102", false}, // the 4th from the new answer
	}
	masked := 0
	for i, s := range steps {
		if strings.HasPrefix(s.path, "/v1/search") {
			rt, _ := e.r.Match("GET", "/v1/search")
			if _, err := e.r.Apply(context.Background(), t0.Add(time.Duration(i)*time.Second), id, Request{Method: "GET", Path: "/v1/search", RawQuery: "q=us", ID: "req-again"},
				rt, Response{Status: 200, ContentType: "application/json", Body: followers(100, 101, 102, 103, 104, 105)}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var n int
		fmt.Sscanf(s.path[strings.LastIndexAny(s.path, "/_")+1:], "%d", &n)
		body := profile(n)
		out := e.get(t0.Add(time.Duration(i)*time.Second), id, s.path, body)
		if got := served(t, out, body); got != s.served {
			t.Errorf("step %d %s: served %v, want %v", i, s.path, got, s.served)
		}
		if !s.served {
			masked++
			if !slices.Contains(out.Access.MaskRules, "fanout-cap") {
				t.Errorf("%s: Access mask rules %v, want fanout-cap", s.path, out.Access.MaskRules)
			}
		}
	}
	if got := counter(e.r.met.masked.WithLabelValues("fanout-cap")); got != float64(masked) {
		t.Errorf("masked counter %v, want %d", got, masked)
	}
	// What the cap masked was not served: the budget counted the served only.
	if got := counter(e.r.met.served.WithLabelValues("contact-day")); got != float64(len(steps)-1-masked) {
		t.Errorf("budget served %v, want %d (re-views counted as served too)", got, len(steps)-1-masked)
	}
	// The window is from the answer's first open: ten minutes on, the same
	// page serves again.
	if body := profile(202); !served(t, e.get(t0.Add(time.Minute), id, "/v1/users/202", body), body) {
		t.Error("the 3rd from the second page: masked")
	}
	if body := profile(203); served(t, e.get(t0.Add(time.Minute), id, "/v1/users/203", body), body) {
		t.Error("the 4th from the second page: served")
	}
	if body := profile(203); !served(t, e.get(t0.Add(11*time.Minute), id, "/v1/users/203", body), body) {
		t.Error("after the window: masked")
	}
}

// TestFanoutCapHold: past the cap, with hold, every search or list look-up
// is masked for hold, whatever answer showed it; social ones are not.
func TestFanoutCapHold(t *testing.T) {
	l := loadLab(t)
	e := newEnv(t, fanCfg(2, 30*time.Minute), l.Inspect)
	id := account("7")
	e.get(t0, id, "/v1/search?q=us", followers(100, 101, 102))
	e.get(t0, id, "/v1/search?q=ab", followers(200, 201))
	e.get(t0, id, "/v1/feed", feed(500))
	for _, s := range []struct {
		at     time.Duration
		n      int
		served bool
	}{
		{time.Second, 100, true}, {time.Second, 101, true}, {time.Second, 102, false}, // past the cap
		{2 * time.Second, 200, false}, // another page: held
		{2 * time.Second, 500, true},  // its feed's author: social
		{30*time.Minute + time.Second, 201, true},
	} {
		body := profile(s.n)
		if got := served(t, e.get(t0.Add(s.at), id, fmt.Sprintf("/v1/users/%d", s.n), body), body); got != s.served {
			t.Errorf("t0+%v %d: served %v, want %v", s.at, s.n, got, s.served)
		}
	}
}

// TestFanoutCapShadowAndExempt: in shadow mode the cap masks nothing and
// counts what it would have masked; an exempt identity is not capped.
func TestFanoutCapShadowAndExempt(t *testing.T) {
	l := loadLab(t)
	cfg := fanCfg(1, 0)
	cfg.FanoutCap.Mode = Shadow
	cfg.FanoutCap.Exempt = Exempt{Accounts: []string{"9"}}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	r, err := newR(cfg, l.Inspect, newStore(t), m, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, r: r, reg: reg}
	e.get(t0, account("7"), "/v1/search?q=us", followers(100, 101, 102))
	for _, n := range []int{100, 101, 102} {
		body := profile(n)
		if out := e.get(t0.Add(time.Second), account("7"), fmt.Sprintf("/v1/users/%d", n), body); !served(t, out, body) || len(out.Access.MaskRules) != 0 {
			t.Errorf("%d: shadow cap changed the answer", n)
		}
	}
	if got := counter(m.Shadow().Counter("fanout-cap", "mask")); got != 2 {
		t.Errorf("would have masked %v, want 2", got)
	}
	if !strings.Contains(logs.String(), `"msg":"would have masked","rule":"fanout-cap","mode":"shadow","request_id":"req-/v1/users/101"`) {
		t.Errorf("no would-have log line:\n%s", logs.String())
	}
	cfg.FanoutCap.Mode = Enforce
	e = newEnv(t, cfg, l.Inspect)
	e.get(t0, account("9"), "/v1/search?q=us", followers(100, 101, 102))
	for _, n := range []int{100, 101, 102} {
		body := profile(n)
		if !served(t, e.get(t0.Add(time.Second), account("9"), fmt.Sprintf("/v1/users/%d", n), body), body) {
			t.Errorf("exempt account: %d masked", n)
		}
	}
}

func TestFanoutCapConfig(t *testing.T) {
	l := loadLab(t)
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"needs unreferenced", Config{FanoutCap: &FanoutCap{Limit: 3, Window: time.Minute}}, []string{"fanout_cap: needs the unreferenced section"}},
		{"fields", Config{Unreferenced: &Unreferenced{}, FanoutCap: &FanoutCap{Limit: 0, Window: 0, Hold: -1, Mode: "dry",
			Provenance: []inspect.Provenance{inspect.Social}}},
			[]string{"fanout_cap.limit: must be 1 to 64, got 0", "fanout_cap.window: must be positive", "fanout_cap.hold: must not be negative",
				`fanout_cap.provenance[0]: must be search or list, got "social"`, `fanout_cap.mode: "dry" is not enforce or shadow`}},
		{"unknown class", Config{Unreferenced: &Unreferenced{}, FanoutCap: &FanoutCap{Limit: 1, Window: time.Minute, Classes: []string{"health"}}},
			[]string{`fanout_cap.classes[0]: no route maps class "health"`}},
		{"limit too high", Config{Unreferenced: &Unreferenced{}, FanoutCap: &FanoutCap{Limit: 65, Window: time.Minute}}, []string{"fanout_cap.limit: must be 1 to 64, got 65"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newR(tt.cfg, l.Inspect, newStore(t), nil, nil)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}
