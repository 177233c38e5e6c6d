package privacy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Files kept in the ledger directory (the ledger reads only its own
// partitions' names and leaves these alone).
const (
	BudgetFile = "privacy-budgets.json" // researchers' spending and the answers they were given
	KeyFile    = "privacy.key"          // the key of the hash that seeds each answer's noise
	lockFile   = "privacy.lock"
)

// DefaultLimit is each researcher's budget when the config names none:
// rho = 1 in zCDP, for example 8 answers at epsilon = 0.5, or 2 at 1.
var DefaultLimit = big.NewRat(1, 1)

// Budgets are the researchers' privacy budgets of one ledger directory.
type Budgets struct {
	dir   string
	limit func(researcher string) *big.Rat
}

// NewBudgets keeps budgets in dir; limit gives a researcher's budget in
// zCDP rho (nil: DefaultLimit for everyone).
func NewBudgets(dir string, limit func(string) *big.Rat) *Budgets {
	if limit == nil {
		limit = func(string) *big.Rat { return DefaultLimit }
	}
	return &Budgets{dir: dir, limit: limit}
}

// Keeper keeps the researchers' budgets and the answers they were given:
// Budgets, in a file beside a local ledger, or the ledger's ClickHouse
// (clickhouse.Budgets), shared by a fleet of gateways.
//
// Answer gives researcher name the answer to query (its canonical text):
// the one given before, free, when the same query was asked before; else,
// when the budget holds charge, a fresh answer drawn by draw from the
// source Seed gives for (name, query) under the keeper's key, charged and
// kept before it is returned; else an *ExhaustedError. Two keepers with
// the same key give the same answer to the same question on the same
// data.
type Keeper interface {
	Answer(ctx context.Context, name, query string, charge *big.Rat, draw func(Source) (json.RawMessage, error)) (json.RawMessage, Account, error)
}

// Request asks for a differentially private answer: noise from
// Mechanism, charged to Researcher's budget in Budgets. Query is the
// question's canonical text: the same text from the same researcher gets
// the same answer, free.
type Request struct {
	Mechanism  Mechanism
	Researcher string
	Budgets    Keeper
	Query      string
}

// QueryText is the canonical text of the question name (a command:
// "reach", "audience") asks under m, with params: each parameter named as
// the command's flag, at its canonical value (id lists sorted), none at
// its default. Request.Query is this text; the command line and the demo
// both build it here, so a question the demo asked is, asked again on the
// command line, the same question: answered again, free.
func QueryText(name string, params map[string]string, m Mechanism) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n%s=%s", k, params[k])
	}
	fmt.Fprintf(&b, "\n%s", m.Param())
	return b.String()
}

// Answer is req's answer, of type T: drawn by draw (its noise from src)
// and charged the first time req's researcher asks req's query, the one
// given then, free, on a repeat. The keeper keeps it as JSON, and the
// first answer too is what was kept, decoded: first and repeats alike.
func Answer[T any](ctx context.Context, req Request, draw func(src Source) (*T, error)) (*T, Account, error) {
	raw, acct, err := req.Budgets.Answer(ctx, req.Researcher, req.Query, req.Mechanism.Charge(), func(src Source) (json.RawMessage, error) {
		res, err := draw(src)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	})
	if err != nil {
		return nil, acct, err
	}
	res := new(T)
	if err := json.Unmarshal(raw, res); err != nil {
		return nil, acct, fmt.Errorf("privacy: the answer kept for %s: %w", req.Researcher, err)
	}
	return res, acct, nil
}

// KeySize is the length of the key of the hash that seeds answers' noise.
const KeySize = 32

// Seed is the seed of the noise of name's answer to query, a keyed hash
// (HMAC-SHA-256) of both, and the answer's id (a hash of the seed, so it
// tells nothing of the noise): kept with the answer, it finds a repeat.
func Seed(key []byte, name, query string) (seed [32]byte, id string) {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(query))
	mac.Sum(seed[:0])
	idSum := sha256.Sum256(append([]byte("answer id\x00"), seed[:]...))
	return seed, hex.EncodeToString(idSum[:16])
}

// NewSource is the noise source of an answer seeded by seed.
func NewSource(seed [32]byte) Source { return mrand.NewChaCha8(seed) }

// Account is a researcher's standing, printed with every answer.
type Account struct {
	Researcher string `json:"researcher"`
	Limit      string `json:"budget_rho"`
	Spent      string `json:"spent_rho"`
	Remaining  string `json:"remaining_rho"`
	Charged    string `json:"charged_rho"` // by this answer: 0 for a repeat
	// RemainingEpsilon is the largest pure-epsilon answer still affordable
	// (epsilon^2/2 <= remaining rho).
	RemainingEpsilon float64 `json:"remaining_epsilon"`
	// TotalEpsilon states everything spent so far as (epsilon, Delta)-DP.
	TotalEpsilon float64   `json:"total_epsilon_at_delta"`
	Delta        float64   `json:"delta"`
	Repeat       bool      `json:"repeat"`               // the answer given before to the same query, free
	AnsweredAt   time.Time `json:"answered_at,omitzero"` // zero (left out) on a refusal: nothing was answered
}

// ExhaustedError is the refusal of an answer past the budget.
type ExhaustedError struct {
	Account Account
	Need    string
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("privacy budget of %q exhausted: this answer costs rho %s, %s of %s remains (nothing was answered or charged)",
		e.Account.Researcher, e.Need, e.Account.Remaining, e.Account.Limit)
}

type budgetState struct {
	Version     int                    `json:"version"`
	Researchers map[string]*researcher `json:"researchers"`
}

type researcher struct {
	Spent   string             `json:"spent_rho"` // an exact rational
	Answers map[string]*answer `json:"answers"`   // by the query's keyed hash
}

type answer struct {
	At      time.Time       `json:"at"`
	Charged string          `json:"charged_rho"`
	Answer  json.RawMessage `json:"answer"` // the noisy answer as released; never an exact figure
}

// ValidResearcher checks a researcher's name.
func ValidResearcher(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("researcher: give a name of 1 to 64 characters")
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' && r != '@' {
			return fmt.Errorf("researcher: %q has a character other than letters, digits, - _ . @", name)
		}
	}
	return nil
}

// Answer is Keeper's: the charge is written to disk (under a lock across
// processes) before the answer is returned.
func (b *Budgets) Answer(_ context.Context, name, query string, charge *big.Rat, draw func(Source) (json.RawMessage, error)) (json.RawMessage, Account, error) {
	if err := ValidResearcher(name); err != nil {
		return nil, Account{}, err
	}
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return nil, Account{}, fmt.Errorf("privacy: %w", err)
	}
	unlock, err := b.lock()
	if err != nil {
		return nil, Account{}, err
	}
	defer unlock()
	key, err := b.key()
	if err != nil {
		return nil, Account{}, err
	}
	st, err := b.load()
	if err != nil {
		return nil, Account{}, err
	}
	r := st.Researchers[name]
	if r == nil {
		r = &researcher{Spent: "0", Answers: map[string]*answer{}}
	}
	spent, ok := new(big.Rat).SetString(r.Spent)
	if !ok {
		return nil, Account{}, fmt.Errorf("privacy: %s: researcher %q: spent %q is not a number", b.path(BudgetFile), name, r.Spent)
	}
	limit := b.limit(name)
	seed, id := Seed(key, name, query)
	if prev, ok := r.Answers[id]; ok {
		return prev.Answer, NewAccount(name, limit, spent, new(big.Rat), true, prev.At), nil
	}
	after := new(big.Rat).Add(spent, charge)
	if after.Cmp(limit) > 0 {
		return nil, Account{}, Exhausted(name, limit, spent, charge)
	}
	out, err := draw(NewSource(seed))
	if err != nil {
		return nil, Account{}, err
	}
	now := time.Now().UTC()
	r.Spent = after.RatString()
	r.Answers[id] = &answer{At: now, Charged: charge.RatString(), Answer: out}
	st.Researchers[name] = r
	if err := b.save(st); err != nil {
		return nil, Account{}, err // not charged, and not answered
	}
	return out, NewAccount(name, limit, after, charge, false, now), nil
}

// Exhausted is the refusal of an answer costing charge to name, who
// spent spent of limit.
func Exhausted(name string, limit, spent, charge *big.Rat) *ExhaustedError {
	return &ExhaustedError{Account: NewAccount(name, limit, spent, new(big.Rat), false, time.Time{}), Need: ratString(charge)}
}

// Standing is a researcher's account without asking anything.
func (b *Budgets) Standing(name string) (Account, error) {
	st, err := b.load()
	if err != nil {
		return Account{}, err
	}
	spent := new(big.Rat)
	if r := st.Researchers[name]; r != nil {
		spent.SetString(r.Spent)
	}
	return NewAccount(name, b.limit(name), spent, new(big.Rat), false, time.Time{}), nil
}

// NewAccount is name's standing: limit and spent so far (after this
// answer), charged by this answer, a repeat of the answer given at at.
func NewAccount(name string, limit, spent, charged *big.Rat, repeat bool, at time.Time) Account {
	rem := new(big.Rat).Sub(limit, spent)
	if rem.Sign() < 0 {
		rem.SetInt64(0)
	}
	rf, _ := rem.Float64()
	return Account{
		Researcher: name, Limit: ratString(limit), Spent: ratString(spent), Remaining: ratString(rem),
		Charged: ratString(charged), RemainingEpsilon: math.Floor(math.Sqrt(2*rf)*1e4) / 1e4,
		TotalEpsilon: EpsilonAt(spent), Delta: Delta, Repeat: repeat, AnsweredAt: at,
	}
}

func (b *Budgets) path(name string) string { return filepath.Join(b.dir, name) }

// lock serialises every reader and writer of the budget file, across
// processes (the admin API and the command line may ask at once).
func (b *Budgets) lock() (func(), error) {
	// O_NOFOLLOW here and below: warden may run as root, and a link
	// planted under a budget file's name would have it lock or overwrite
	// another file.
	f, err := os.OpenFile(b.path(lockFile), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("privacy: lock %s: %w", f.Name(), err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// key reads the hash key, making it (32 random bytes, 0600) the first time.
func (b *Budgets) key() ([]byte, error) {
	p := b.path(KeyFile)
	k, err := os.ReadFile(p)
	if err == nil {
		if len(k) != KeySize {
			return nil, fmt.Errorf("privacy: %s: %d bytes, want %d", p, len(k), KeySize)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	k = make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := writeAside(b.dir, KeyFile, k); err != nil {
		return nil, err
	}
	return k, nil
}

func (b *Budgets) load() (*budgetState, error) {
	st := &budgetState{Version: 1, Researchers: map[string]*researcher{}}
	data, err := os.ReadFile(b.path(BudgetFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		// Never answer on a budget that cannot be read.
		return nil, fmt.Errorf("privacy: %s: %w (no answer is given until it is repaired)", b.path(BudgetFile), err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("privacy: %s: version %d, want 1", b.path(BudgetFile), st.Version)
	}
	if st.Researchers == nil {
		st.Researchers = map[string]*researcher{}
	}
	for _, r := range st.Researchers {
		if r.Answers == nil {
			r.Answers = map[string]*answer{}
		}
	}
	return st, nil
}

func (b *Budgets) save(st *budgetState) error {
	data, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	return writeAside(b.dir, BudgetFile, append(data, '\n'))
}

// writeAside replaces dir/name crash-safely: written to a temporary
// file, fsynced, renamed over it, and the directory fsynced. A crash
// leaves the old file or the new one, never a torn one.
func writeAside(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	// A leftover (a crash mid-write) is removed, not truncated: whatever
	// it is, a link included, a new file takes its name.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("privacy: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("privacy: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("privacy: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("privacy: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("privacy: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("privacy: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("privacy: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("privacy: fsync %s: %w", dir, err)
	}
	return nil
}
