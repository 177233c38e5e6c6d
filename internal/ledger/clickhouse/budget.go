package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/internal/privacy"
)

// Budgets keeps the researchers' privacy budgets in ClickHouse
// (privacy_charges, privacy_locks, privacy_key; schema.go), so that every
// gateway of a fleet charges the same budget: a privacy.Keeper. Answers
// are the local ledger's (privacy.Budgets): the same keyed hash seeds the
// noise, a repeat is the answer given before, free, and past the budget
// answers are refused.
//
// ClickHouse 18.16 has no transactions. Two gateways charging one
// researcher at once are kept from overspending by a lock per researcher
// made of rows (lock): a gateway inserts its claim, then reads the live
// claims; it holds the lock only when its claim is the only one, else it
// withdraws it (a cancelling row) and tries again after a random pause.
// Of two gateways that both inserted before either read, both see the
// other; otherwise the later one sees the earlier: at most one holds the
// lock. Under it the gateway reads the researcher's charges, and inserts
// its own before releasing it; an insert is visible to every read that
// starts after it returned (one server, or replicas read with
// select_sequential_consistency). A claim older than lockLease is
// ignored (its gateway died holding it); a holder gives up before
// lockLease/2 has passed, so a live claim is never taken for a dead one.
type Budgets struct {
	c     *Client
	limit func(researcher string) *big.Rat

	mu  sync.Mutex
	key []byte // read once

	withdrawn atomic.Int64 // claims withdrawn: another gateway's was live
}

// The lock's lease and the pauses between attempts to take it.
const (
	lockLease    = 60 * time.Second
	lockPatience = 20 * time.Second // then the charge is refused: try again
)

// NewBudgets keeps budgets in c's database; limit gives a researcher's
// budget in zCDP rho (nil: privacy.DefaultLimit for everyone).
func NewBudgets(c *Client, limit func(string) *big.Rat) *Budgets {
	if limit == nil {
		limit = func(string) *big.Rat { return privacy.DefaultLimit }
	}
	return &Budgets{c: c, limit: limit}
}

// ErrNoKey is the error of a database that warden ledger init has not
// given a privacy key.
var ErrNoKey = errors.New("clickhouse: no privacy key in privacy_key: run warden ledger init")

// Key is the key of the hash that seeds answers' noise: one row of
// privacy_key, made by warden ledger init, shared by every gateway (the
// same question gets the same noise from any of them). It is kept in
// ClickHouse because whoever reads that database reads the exact ledger
// anyway; researchers, who only see answers, never see it. Never logged.
func (b *Budgets) Key(ctx context.Context) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.key != nil {
		return b.key, nil
	}
	k, err := b.c.privacyKey(ctx)
	if err != nil {
		return nil, err
	}
	b.key = k
	return k, nil
}

func (c *Client) privacyKey(ctx context.Context) ([]byte, error) {
	// Of two keys (two inits at once, before any answer), every gateway
	// takes the one of the lowest id.
	rows, err := c.rows(ctx, "SELECT hex(key) FROM privacy_key ORDER BY id LIMIT 1")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: privacy key: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNoKey
	}
	k, err := hex.DecodeString(rows[0][0])
	if err != nil || len(k) != privacy.KeySize {
		return nil, fmt.Errorf("clickhouse: privacy_key: %d bytes, want %d", len(k), privacy.KeySize)
	}
	return k, nil
}

// initKey makes the privacy key when privacy_key has none; the key goes in
// the insert's body, never in a query's text (ClickHouse logs those).
func (c *Client) initKey(ctx context.Context) error {
	rows, err := c.rows(ctx, "SELECT count() FROM privacy_key")
	if err != nil {
		return err
	}
	if len(rows) == 1 && rows[0][0] != "0" {
		return nil
	}
	k := make([]byte, privacy.KeySize)
	rand.Read(k)
	body := putU64(putStr(nil, string(k)), newID())
	_, err = c.insert(ctx, "INSERT INTO privacy_key (key, id) FORMAT RowBinary", body)
	return err
}

// charges is a researcher's standing: spent, and the answer to one query
// when it was given before.
type charges struct {
	spent  *big.Rat
	answer json.RawMessage // nil: not asked before
	at     time.Time
}

func (b *Budgets) charges(ctx context.Context, name, answerID string) (charges, error) {
	rows, err := b.c.rows(ctx, fmt.Sprintf(`SELECT toString(id), rho, answer_id = %[1]s, if(answer_id = %[1]s, answer, ''), toUInt64(toUnixTimestamp(t)) * 1000000 + us
FROM privacy_charges WHERE researcher = %[2]s ORDER BY t, us`, quote(answerID), quote(name)))
	if err != nil {
		return charges{}, fmt.Errorf("clickhouse: privacy budget of %q: %w", name, err)
	}
	ch := charges{spent: new(big.Rat)}
	seen := map[string]bool{}
	for _, r := range rows {
		if len(r) != 5 {
			return charges{}, fmt.Errorf("clickhouse: privacy budget of %q: a row of %d fields", name, len(r))
		}
		// A charge sent twice (a retry to another address) is one.
		if seen[r[0]] {
			continue
		}
		seen[r[0]] = true
		rho, ok := new(big.Rat).SetString(r[1])
		if !ok {
			// Never answer on a budget that cannot be read.
			return charges{}, fmt.Errorf("clickhouse: privacy budget of %q: charge %q is not a number (no answer is given until it is repaired)", name, r[1])
		}
		ch.spent.Add(ch.spent, rho)
		if r[2] == "1" && ch.answer == nil {
			ch.answer, ch.at = json.RawMessage(r[3]), micro(r[4])
		}
	}
	return ch, nil
}

// Answer is privacy.Keeper's. A repeat is found without the lock (a
// charge, once inserted, stays); a new answer is drawn before the lock is
// taken (drawing reads the ledger, and nothing is released before it is
// charged), then under it the budget is read again and the charge
// inserted.
func (b *Budgets) Answer(ctx context.Context, name, query string, charge *big.Rat, draw func(privacy.Source) (json.RawMessage, error)) (json.RawMessage, privacy.Account, error) {
	if err := privacy.ValidResearcher(name); err != nil {
		return nil, privacy.Account{}, err
	}
	key, err := b.Key(ctx)
	if err != nil {
		return nil, privacy.Account{}, err
	}
	limit := b.limit(name)
	seed, id := privacy.Seed(key, name, query)
	ch, err := b.charges(ctx, name, id)
	if err != nil {
		return nil, privacy.Account{}, err
	}
	if ch.answer != nil {
		return ch.answer, privacy.NewAccount(name, limit, ch.spent, new(big.Rat), true, ch.at), nil
	}
	if new(big.Rat).Add(ch.spent, charge).Cmp(limit) > 0 {
		return nil, privacy.Account{}, privacy.Exhausted(name, limit, ch.spent, charge)
	}
	out, err := draw(privacy.NewSource(seed))
	if err != nil {
		return nil, privacy.Account{}, err
	}
	unlock, held, err := b.lock(ctx, name)
	if err != nil {
		return nil, privacy.Account{}, err
	}
	defer unlock()
	// Another gateway may have charged meanwhile.
	if ch, err = b.charges(ctx, name, id); err != nil {
		return nil, privacy.Account{}, err
	}
	if ch.answer != nil {
		return ch.answer, privacy.NewAccount(name, limit, ch.spent, new(big.Rat), true, ch.at), nil
	}
	after := new(big.Rat).Add(ch.spent, charge)
	if after.Cmp(limit) > 0 {
		return nil, privacy.Account{}, privacy.Exhausted(name, limit, ch.spent, charge)
	}
	if time.Since(held) > lockLease/2 {
		return nil, privacy.Account{}, fmt.Errorf("clickhouse: privacy budget of %q: the lock was held %v, past half its lease; nothing was charged or answered, ask again", name, time.Since(held).Round(time.Second))
	}
	now := time.Now().UTC()
	row := putStr(nil, name)
	row = putStr(row, id)
	row = putU64(row, newID())
	row = putStr(row, charge.RatString())
	row = putU32(row, uint32(now.Unix()))
	row = putU32(row, uint32(now.Nanosecond()/1000))
	row = putStr(row, string(out))
	// The insert may not outlive the lease: past it another gateway may
	// take the lock.
	ictx, cancel := context.WithDeadline(ctx, held.Add(lockLease/2))
	defer cancel()
	if _, err := b.c.insert(ictx, "INSERT INTO privacy_charges (researcher, answer_id, id, rho, t, us, answer) FORMAT RowBinary", row); err != nil {
		return nil, privacy.Account{}, fmt.Errorf("clickhouse: privacy budget of %q: charge: %w (not answered)", name, err)
	}
	return out, privacy.NewAccount(name, limit, after, charge, false, now.Truncate(time.Microsecond)), nil
}

// lock takes researcher name's lock (see Budgets): it returns when this
// gateway's claim is the only live one, with when it was taken, and the
// function that withdraws the claim.
func (b *Budgets) lock(ctx context.Context, name string) (func(), time.Time, error) {
	claim := func(ctx context.Context, id uint64, sign int8) error {
		row := putU64(putStr(nil, name), id)
		_, err := b.c.insert(ctx, "INSERT INTO privacy_locks (researcher, id, sign) FORMAT RowBinary", append(row, byte(sign)))
		return err
	}
	release := func(id uint64) {
		// Withdrawn even when ctx has ended; else it lapses with its lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		claim(rctx, id, -1)
	}
	// A claim is live while it has no withdrawal (a claim sent twice is
	// still one) and is younger than the lease.
	q := fmt.Sprintf("SELECT toString(id) FROM privacy_locks WHERE researcher = %s AND t > now() - %d GROUP BY id HAVING min(sign) = 1",
		quote(name), int(lockLease/time.Second))
	pause := 5 * time.Millisecond
	start := time.Now()
	for {
		id := newID()
		held := time.Now()
		if err := claim(ctx, id, 1); err != nil {
			release(id) // the claim may have landed before the answer was lost
			return nil, time.Time{}, fmt.Errorf("clickhouse: privacy budget of %q: lock: %w", name, err)
		}
		rows, err := b.c.rows(ctx, q)
		if err != nil {
			release(id)
			return nil, time.Time{}, fmt.Errorf("clickhouse: privacy budget of %q: lock: %w", name, err)
		}
		mine := strconv.FormatUint(id, 10)
		if len(rows) == 1 && rows[0][0] == mine {
			return func() { release(id) }, held, nil
		}
		release(id)
		b.withdrawn.Add(1)
		if time.Since(start) > lockPatience {
			return nil, time.Time{}, fmt.Errorf("clickhouse: privacy budget of %q: another gateway held its lock for %v; nothing was charged or answered, ask again", name, lockPatience)
		}
		// A random pause, so that two gateways that saw each other do not
		// meet again.
		d := pause/2 + time.Duration(mrand.Int64N(int64(pause)))
		pause = min(2*pause, 500*time.Millisecond)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, time.Time{}, ctx.Err()
		}
	}
}
