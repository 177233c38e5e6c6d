package dashboard_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ration"
)

// lockedBuffer is a log the server's goroutines write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The identities page over a ledger whose day rollup has a flipped byte:
// the counts are the intact ones (the hours answer), and the rollup is
// counted in DerivedSkipped and logged at warn level naming the file.
func TestPagesCountSkippedDerivedFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	yesterday := now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	at := yesterday
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	watch := dashboard.NewWatch(0)
	rec := func(when time.Time, account, subject string) {
		at = when
		acc := &inspect.Access{RequestID: fmt.Sprint("r", when.UnixNano(), account), Time: when, Route: "GET /v1/users/{id}",
			Classes: []string{"contact"}, Status: 200, Records: []inspect.Record{{ID: subject, Classes: 0b1}}}
		acc.Identity.Account, acc.Identity.IP = account, netip.MustParseAddr("10.0.0.1")
		l.Record(acc)
		watch.Record(acc)
	}
	// Every hour of yesterday (a whole day: its rollup is made), and one
	// Access now so that both accounts are candidates.
	for h := range 24 {
		rec(yesterday.Add(time.Duration(h)*time.Hour+time.Minute), "alice", fmt.Sprint("s", h%7))
		rec(yesterday.Add(time.Duration(h)*time.Hour+2*time.Minute), "bob", fmt.Sprint("s", h%3))
	}
	rec(now, "alice", "s20")
	rec(now, "bob", "s21")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A start later seals yesterday's hours and makes its rollup.
	if l, err = ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	day := filepath.Join(dir, yesterday.Format(time.DateOnly)+".day")
	good, err := os.ReadFile(day)
	if err != nil {
		t.Fatalf("no rollup of yesterday: %v", err)
	}

	cfg := &config.Config{}
	cfg.Ration.Budgets = []ration.BudgetConfig{{Name: "contacts", Facet: "account", Class: "contact", Limit: 100, Window: 48 * time.Hour}}
	skipped := prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_ledger_derived_skipped_total", Help: "h"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(skipped)
	value := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 {
			t.Fatalf("gather: %v %v", mfs, err)
		}
		return mfs[0].GetMetric()[0].GetCounter().GetValue()
	}
	var logs lockedBuffer
	e := newEnvWith(t, dir, false, func(o *dashboard.Options) {
		o.Watch, o.Config, o.DerivedSkipped = watch, func() *config.Config { return cfg }, skipped
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c := e.client(t)
	e.signIn(t, c)
	cell := regexp.MustCompile(`<td>([0-9]+)(?: / ([0-9]+))?`)
	counts := func() string {
		t.Helper()
		r, err := c.Get(e.srv.URL + "/identities")
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, r)
		var out []string
		for _, v := range []string{"alice", "bob"} {
			i := strings.Index(page, ">"+v+"</a>")
			if i < 0 {
				t.Fatalf("no row for %s:\n%s", v, page)
			}
			out = append(out, fmt.Sprint(v, cell.FindAllStringSubmatch(page[i:i+strings.Index(page[i:], "</tr>")], -1)))
		}
		return strings.Join(out, " ")
	}
	want := counts()
	// alice: 8 subjects in 48 hours (s0-s6 and s20), bob 4.
	if !strings.Contains(want, "[<td>8 / 100 8 100]") || !strings.Contains(want, "[<td>4 / 100 4 100]") {
		t.Fatalf("intact counts %s, want alice 8 and bob 4 in 48 hours", want)
	}
	if n := value(); n != 0 {
		t.Fatalf("%v skipped on an intact ledger", n)
	}

	b := bytes.Clone(good)
	b[0] ^= 0x01 // its magic: the rollup does not parse
	if err := os.WriteFile(day, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got != want {
		t.Errorf("over a damaged rollup: %s, want the intact %s", got, want)
	}
	if n := value(); n < 1 {
		t.Errorf("%v skipped, want the rollup counted", n)
	}
	if log := logs.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, day) {
		t.Errorf("log %q: want a warning naming %s", log, day)
	}
}
