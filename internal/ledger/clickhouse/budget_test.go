package clickhouse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/warden-gw/warden/internal/privacy"
)

// noisy draws one noisy cell of exact count 100.
func noisy(m privacy.Mechanism) func(privacy.Source) (json.RawMessage, error) {
	return func(src privacy.Source) (json.RawMessage, error) {
		h, err := m.Release(src, []int64{100})
		if err != nil {
			return nil, err
		}
		v, iv := h.Figure(func(int) bool { return true })
		return json.Marshal([]int64{v, iv.Low, iv.High})
	}
}

// hosts is two gateways' keepers on one database, new (config makes it
// anew): each its own Client.
func hosts(t *testing.T, db string, limit *big.Rat) (*Budgets, *Budgets) {
	cfg := config(t, server(t), db)
	var out [2]*Budgets
	for i := range out {
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = NewBudgets(c, func(string) *big.Rat { return limit })
	}
	return out[0], out[1]
}

// TestBudgetsSameAsLocal: the same questions asked of the local keeper
// (with ClickHouse's key in its directory) and of ClickHouse's give the
// same answers, charges, refusals and repeats.
func TestBudgetsSameAsLocal(t *testing.T) {
	ch, _ := hosts(t, "budgetlocal", big.NewRat(1, 2))
	key, err := ch.Key(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, privacy.KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	local := privacy.NewBudgets(dir, func(string) *big.Rat { return big.NewRat(1, 2) })
	half, _ := privacy.ParseMechanism("0.5", "")
	asks := []struct{ who, q string }{{"alice", "q1"}, {"alice", "q2"}, {"alice", "q1"}, {"bob", "q1"}, {"alice", "q3"}, {"alice", "q4"}, {"alice", "q5"}, {"alice", "q2"}}
	for i, a := range asks {
		var got [2]string
		for k, keeper := range []privacy.Keeper{local, ch} {
			out, acct, err := keeper.Answer(t.Context(), a.who, a.q, half.Charge(), noisy(half))
			var ex *privacy.ExhaustedError
			switch {
			case errors.As(err, &ex):
				got[k] = fmt.Sprintf("refused %+v need %s", ex.Account, ex.Need)
			case err != nil:
				t.Fatalf("ask %d: %v", i, err)
			default:
				// The local file keeps answers indented.
				var flat bytes.Buffer
				if err := json.Compact(&flat, out); err != nil {
					t.Fatal(err)
				}
				got[k] = fmt.Sprintf("%s spent %s remaining %s charged %s repeat %v", flat.Bytes(), acct.Spent, acct.Remaining, acct.Charged, acct.Repeat)
			}
		}
		if got[0] != got[1] {
			t.Errorf("ask %d (%s %s):\nlocal      %s\nclickhouse %s", i, a.who, a.q, got[0], got[1])
		}
		// The standing without asking (the dashboard's reach page) too.
		ls, lerr := local.Standing(a.who)
		cs, cerr := ch.Standing(t.Context(), a.who)
		if lerr != nil || cerr != nil || ls != cs {
			t.Errorf("after ask %d, %s's standing:\nlocal      %+v %v\nclickhouse %+v %v", i, a.who, ls, lerr, cs, cerr)
		}
		t.Logf("ask %d: %s", i, got[1])
	}
	// alice: q1, q2, q3, q4 at 1/8 each spend 1/2; q5 is refused; the
	// repeats are free.
	if _, acct, err := ch.Answer(t.Context(), "alice", "q2", half.Charge(), noisy(half)); err != nil || !acct.Repeat || acct.Spent != "0.5" {
		t.Fatalf("repeat after the budget is spent: %+v %v", acct, err)
	}
}

// TestBudgetsConcurrentHosts: two gateways charge one researcher at once,
// every ask past the check before any charge (the draws wait for each
// other): no more is charged than the budget, and the same question asked
// on both is charged once, with one answer.
func TestBudgetsConcurrentHosts(t *testing.T) {
	a, b := hosts(t, "budgetrace", big.NewRat(1, 1))
	quarter, _ := privacy.ParseMechanism("", "0.25")
	const n = 8 // 8 asks of rho 1/4 against a budget of 1
	var arrived sync.WaitGroup
	arrived.Add(n)
	type result struct {
		out  json.RawMessage
		acct privacy.Account
		err  error
	}
	res := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			arrive := func() { once.Do(arrived.Done) }
			defer arrive()
			keeper := a
			if i%2 == 1 {
				keeper = b
			}
			out, acct, err := keeper.Answer(t.Context(), "carol", fmt.Sprintf("q%d", i), quarter.Charge(), func(src privacy.Source) (json.RawMessage, error) {
				arrive()
				arrived.Wait() // every ask has drawn or was refused before any charge
				return noisy(quarter)(src)
			})
			res[i] = result{out, acct, err}
		}()
	}
	wg.Wait()
	answered, refused := 0, 0
	for i, r := range res {
		var ex *privacy.ExhaustedError
		switch {
		case r.err == nil:
			answered++
		case errors.As(r.err, &ex):
			refused++
		default:
			t.Fatalf("ask %d: %v", i, r.err)
		}
	}
	t.Logf("claims withdrawn on contention: %d and %d", a.withdrawn.Load(), b.withdrawn.Load())
	if answered != 4 || refused != 4 {
		t.Fatalf("%d answered, %d refused; want 4 and 4 (a budget of 1 at 1/4 each)", answered, refused)
	}
	ch, err := a.charges(t.Context(), "carol", "")
	if err != nil {
		t.Fatal(err)
	}
	if ch.spent.Cmp(big.NewRat(1, 1)) != 0 {
		t.Fatalf("ClickHouse holds charges of %s, want 1", ch.spent.RatString())
	}

	// The same question on both gateways at once: one charge, one answer.
	var both [2]result
	arrived.Add(2)
	for i, keeper := range []*Budgets{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			arrive := func() { once.Do(arrived.Done) }
			defer arrive()
			out, acct, err := keeper.Answer(t.Context(), "dave", "same", quarter.Charge(), func(src privacy.Source) (json.RawMessage, error) {
				arrive()
				arrived.Wait()
				return noisy(quarter)(src)
			})
			both[i] = result{out, acct, err}
		}()
	}
	wg.Wait()
	for i, r := range both {
		if r.err != nil {
			t.Fatalf("gateway %d: %v", i, r.err)
		}
	}
	if string(both[0].out) != string(both[1].out) {
		t.Fatalf("two answers to one question: %s and %s", both[0].out, both[1].out)
	}
	if both[0].acct.Repeat == both[1].acct.Repeat {
		t.Fatalf("want one charge and one repeat: %+v, %+v", both[0].acct, both[1].acct)
	}
	if ch, err := b.charges(t.Context(), "dave", ""); err != nil || ch.spent.RatString() != "1/4" {
		t.Fatalf("dave charged %v, %v; want 1/4", ch.spent, err)
	}
	// No claim is left behind.
	rows, err := a.c.rows(t.Context(), "SELECT researcher FROM privacy_locks GROUP BY researcher, id HAVING min(sign) = 1")
	if err != nil || len(rows) != 0 {
		t.Fatalf("live claims left: %v %v", rows, err)
	}
}

// TestBudgetsNeedKey: a database without its privacy key refuses to
// answer, and Init makes one key however often it runs.
func TestBudgetsNeedKey(t *testing.T) {
	a, _ := hosts(t, "budgetkey", big.NewRat(1, 1))
	if err := a.c.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rows, err := a.c.rows(t.Context(), "SELECT count() FROM privacy_key"); err != nil || rows[0][0] != "1" {
		t.Fatalf("keys after two inits: %v %v", rows, err)
	}
	if _, err := a.c.Do(t.Context(), "TRUNCATE TABLE privacy_key", nil); err != nil {
		t.Fatal(err)
	}
	fresh := NewBudgets(a.c, nil)
	m, _ := privacy.ParseMechanism("0.5", "")
	if _, _, err := fresh.Answer(t.Context(), "erin", "q", m.Charge(), noisy(m)); !errors.Is(err, ErrNoKey) {
		t.Fatalf("answer without a key: %v", err)
	}
}
