package privacy

import (
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// drawOne answers with one noisy cell of exact count 100.
func drawOne(m Mechanism) func(Source) (json.RawMessage, error) {
	return func(src Source) (json.RawMessage, error) {
		h, err := m.Release(src, []int64{100})
		if err != nil {
			return nil, err
		}
		v, _ := h.Figure(func(int) bool { return true })
		return json.Marshal(v)
	}
}

func TestBudgetChargesRefusesAndRepeatsFree(t *testing.T) {
	dir := t.TempDir()
	b := NewBudgets(dir, nil) // rho 1
	half, _ := ParseMechanism("0.5", "")
	if got := half.Charge().RatString(); got != "1/8" {
		t.Fatalf("epsilon 0.5 charges rho %s, want 1/8", got)
	}
	first, acct, err := b.Answer(t.Context(), "alice", "q1", half.Charge(), drawOne(half))
	if err != nil {
		t.Fatal(err)
	}
	if acct.Spent != "0.125" || acct.Remaining != "0.875" || acct.Charged != "0.125" || acct.Repeat {
		t.Fatalf("after one answer: %+v", acct)
	}
	// The same query: the same answer, free.
	again, acct, err := b.Answer(t.Context(), "alice", "q1", half.Charge(), drawOne(half))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) || !acct.Repeat || acct.Charged != "0" || acct.Remaining != "0.875" {
		t.Fatalf("repeat: %s (first %s), %+v", again, first, acct)
	}
	// Another researcher asking the same is charged on their own budget.
	if _, acct, err = b.Answer(t.Context(), "bob", "q1", half.Charge(), drawOne(half)); err != nil || acct.Remaining != "0.875" {
		t.Fatalf("bob: %+v %v", acct, err)
	}
	// Seven more distinct queries spend the rest; the eighth is refused.
	for i := 2; i <= 8; i++ {
		if _, _, err := b.Answer(t.Context(), "alice", "q"+string(rune('0'+i)), half.Charge(), drawOne(half)); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	_, _, err = b.Answer(t.Context(), "alice", "q9", half.Charge(), drawOne(half))
	var ex *ExhaustedError
	if !errors.As(err, &ex) || ex.Account.Remaining != "0" {
		t.Fatalf("past the budget: %v", err)
	}
	// A refusal charges nothing, and a repeat still answers.
	if _, acct, err := b.Answer(t.Context(), "alice", "q1", half.Charge(), drawOne(half)); err != nil || !acct.Repeat {
		t.Fatalf("repeat after exhaustion: %+v %v", acct, err)
	}
	for _, name := range []string{BudgetFile, KeyFile} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, info.Mode().Perm())
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, BudgetFile))
	if strings.Contains(string(data), `"100"`) {
		t.Errorf("the budget file holds an exact figure: %s", data)
	}
}

// The noise is a function of the key, the researcher and the query: a
// fresh directory (a new key) draws other noise, and a lost budget file
// with the key kept draws the same.
func TestNoiseSeededByKeyedHash(t *testing.T) {
	m, _ := ParseMechanism("", "0.01") // sigma^2 = 50
	dir := t.TempDir()
	a1, _, err := NewBudgets(dir, nil).Answer(t.Context(), "alice", "q", m.Charge(), drawOne(m))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, BudgetFile))
	a2, _, _ := NewBudgets(dir, nil).Answer(t.Context(), "alice", "q", m.Charge(), drawOne(m))
	if string(a1) != string(a2) {
		t.Errorf("same key, researcher and query: %s then %s", a1, a2)
	}
	differ := 0
	for i := range 5 {
		other, _, _ := NewBudgets(t.TempDir(), nil).Answer(t.Context(), "alice", "q", m.Charge(), drawOne(m))
		if string(other) != string(a1) {
			differ++
		}
		_ = i
	}
	if differ == 0 {
		t.Errorf("five fresh keys all drew %s", a1)
	}
}

// A budget file that cannot be read stops answers; a leftover temporary
// file from a crash mid-write does not.
func TestBudgetFileDamage(t *testing.T) {
	dir := t.TempDir()
	b := NewBudgets(dir, func(string) *big.Rat { return big.NewRat(1, 2) })
	m, _ := ParseMechanism("1", "")
	if _, _, err := b.Answer(t.Context(), "alice", "q", m.Charge(), drawOne(m)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, BudgetFile+".tmp"), []byte("{torn"), 0o600)
	if _, acct, err := b.Answer(t.Context(), "alice", "q", m.Charge(), drawOne(m)); err != nil || !acct.Repeat {
		t.Fatalf("with a torn temporary file beside it: %+v %v", acct, err)
	}
	os.WriteFile(filepath.Join(dir, BudgetFile), []byte(`{"version":1,"researchers":{`), 0o600)
	_, _, err := b.Answer(t.Context(), "alice", "q2", m.Charge(), drawOne(m))
	if err == nil || !strings.Contains(err.Error(), BudgetFile) {
		t.Fatalf("damaged budget file: %v", err)
	}
}

func TestParseMechanism(t *testing.T) {
	cases := []struct {
		eps, rho, want string
		ok             bool
	}{
		{"0.5", "", "epsilon=0.5", true},
		{"", "0.02", "rho=0.02", true},
		{"1/3", "", "epsilon=1/3", true},
		{"", "", "", false},
		{"1", "1", "", false},
		{"0", "", "", false},
		{"-1", "", "", false},
		{"NaN", "", "", false},
		{"1e3", "", "", false},
	}
	for _, c := range cases {
		m, err := ParseMechanism(c.eps, c.rho)
		if (err == nil) != c.ok || c.ok && m.Param() != c.want {
			t.Errorf("ParseMechanism(%q, %q) = %v, %v", c.eps, c.rho, m.Param(), err)
		}
	}
	// The bounds read as the decimals one would type.
	for _, c := range [][3]string{{"0", "", `dp-epsilon: "0" is not a number from 0.01 to 100`}, {"", "1e3", `dp-rho: "1e3" is not a number from 0.00005 to 100`}} {
		if _, err := ParseMechanism(c[0], c[1]); err == nil || err.Error() != c[2] {
			t.Errorf("ParseMechanism(%q, %q): %v, want %s", c[0], c[1], err, c[2])
		}
	}
}

// The stated interval covers the exact figure at least as often as it
// says (checked over 400 seeded answers, one cell and a sum of 20).
func TestIntervalCoverage(t *testing.T) {
	for _, m := range []Mechanism{{Epsilon: big.NewRat(1, 2)}, {Rho: big.NewRat(1, 20)}} {
		for _, cells := range []int{1, 20} {
			src := seeded(50)
			miss := 0
			for range 400 {
				exact := make([]int64, cells)
				for i := range exact {
					exact[i] = 1000
				}
				h, err := m.Release(src, exact)
				if err != nil {
					t.Fatal(err)
				}
				_, iv := h.Figure(func(int) bool { return true })
				if want := int64(1000 * cells); want < iv.Low || want > iv.High {
					miss++
				}
			}
			// 5% of 400 is 20; allow for chance (binomial sd 4.4).
			if miss > 34 {
				t.Errorf("%s, %d cells: missed %d of 400", m.Param(), cells, miss)
			}
			t.Logf("%s, %d cells: half-width %d, missed %d of 400", m.Param(), cells, m.HalfWidth(cells), miss)
		}
	}
}

// Links planted under the budget files' names are never followed: the
// budget is kept in a file of its own and the link's target is untouched
// (warden may run as root).
func TestBudgetFilesNeverFollowLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, BudgetFile+".tmp")); err != nil {
		t.Fatal(err)
	}
	b := NewBudgets(dir, nil)
	half, _ := ParseMechanism("0.5", "")
	if _, _, err := b.Answer(t.Context(), "alice", "q1", half.Charge(), drawOne(half)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != "keep me\n" {
		t.Fatalf("the link's target now holds %q (%v)", got, err)
	}
	if st, err := os.Lstat(filepath.Join(dir, BudgetFile)); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("%s: %v %v", BudgetFile, st, err)
	}
	// A link where the lock is: refused, said, the target untouched.
	dir2 := t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir2, lockFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewBudgets(dir2, nil).Answer(t.Context(), "alice", "q1", half.Charge(), drawOne(half)); err == nil {
		t.Fatal("a budget charged through a lock that is a link")
	}
	if got, _ := os.ReadFile(target); string(got) != "keep me\n" {
		t.Fatalf("the link's target now holds %q", got)
	}
}
