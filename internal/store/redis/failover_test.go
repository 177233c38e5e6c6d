package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/guard"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// failoverBound is how long a failed master's slot may stay unserved. Redis
// needs about 1 s (cluster-node-timeout) to judge it failed and 0.5 to 1 s
// more to elect its replica; rueidis learns the new master when a call that
// failed after the promotion triggers a topology refresh (after a random
// delay of up to 1 s; it has no periodic refresh as the store sets it up).
// Measured: 2.2 to 3.6 s; through the guard, up to one breaker cool-down
// (2 s) more.
const failoverBound = 20 * time.Second

// callTimeout bounds each store call of these tests, so no loop can hang on
// one call.
const callTimeout = 2 * time.Second

// budgetTag is the hash tag of a budget's keys (doc.go, key schema): what
// decides its slot.
func budgetTag(key string) string { return "{s:" + key + "}" }

// failoverCluster starts 3 masters with a replica each, and picks a budget
// key on one master (the victim) and one on another master.
func failoverCluster(t *testing.T, partialCoverage bool) (c *redistest.Cluster, victim, other string, master *redistest.Server) {
	t.Helper()
	c = redistest.StartClusterWith(t, redistest.ClusterOptions{Replicas: 1, PartialCoverage: partialCoverage})
	victim = "victim"
	master = c.MasterOf(budgetTag(victim))
	for i := range 64 {
		k := fmt.Sprintf("other%d", i)
		if c.MasterOf(budgetTag(k)) != master {
			return c, victim, k, master
		}
	}
	t.Fatalf("no budget key among 64 tried is on another master than %s", master.Addr())
	return
}

// spend offers subjects to one budget of window 1 h, bounded by callTimeout.
func spend(st store.Store, key string, limit int, subjects ...uint64) (store.SpendResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := st.Spend(ctx, t0, []store.SpendRequest{{Key: key, Window: time.Hour, Limit: limit, Subjects: subjects}})
	if err != nil {
		return store.SpendResult{}, err
	}
	return res[0], nil
}

func allowedCount(r store.SpendResult) int {
	n := 0
	for _, a := range r.Allowed {
		if a {
			n++
		}
	}
	return n
}

// makeDurable waits until master's replica has every write master took,
// so the failover cannot lose them: replication is asynchronous.
func makeDurable(t *testing.T, master *redistest.Server, victim string) {
	t.Helper()
	n, err := master.WaitReplicas(budgetTag(victim)+":redistest-wait", 1, 2*time.Second)
	if err != nil || n < 1 {
		t.Fatalf("WAIT 1 2000 on %s: %d replicas acknowledged, %v; want 1", master.Addr(), n, err)
	}
}

// checkBudgetKept checks, on the failed-over budget, that the subjects 1..3
// counted before the kill are still counted and the limit of 5 still holds
// exactly.
func checkBudgetKept(t *testing.T, st store.Store, victim string) {
	t.Helper()
	r, err := spend(st, victim, 5, 1, 2, 3)
	if err != nil || allowedCount(r) != 3 || r.Count != 3 {
		t.Fatalf("re-offer of the 3 subjects counted before the kill: %+v, %v; want all allowed, count 3 (a count below 3 means the failover lost writes)", r, err)
	}
	r, err = spend(st, victim, 5, 4, 5, 6)
	if err != nil || allowedCount(r) != 2 || !r.Allowed[0] || !r.Allowed[1] || r.Count != 5 {
		t.Fatalf("3 new subjects with limit 5 after the failover: %+v, %v; want exactly the first 2 allowed, count 5", r, err)
	}
}

// TestFailover kills the master of a budget's slot in a cluster with
// replicas: the same store, never reopened, serves that slot again once the
// replica is promoted, with what was counted before the kill.
func TestFailover(t *testing.T) {
	// cluster-require-full-coverage no: keys on the other masters are
	// served throughout.
	t.Run("partial-coverage", func(t *testing.T) {
		t.Parallel()
		storeFailover(t, true)
	})
	// Redis's default: every node refuses every key (CLUSTERDOWN) from when
	// the master is judged failed until its replica takes over; keys on
	// the other masters then fail only that way, and are served again
	// once the cluster is whole.
	t.Run("full-coverage", func(t *testing.T) {
		t.Parallel()
		storeFailover(t, false)
	})
	t.Run("guard", func(t *testing.T) {
		t.Parallel()
		guardFailover(t)
	})
}

// storeFailover kills the victim's master and probes the store, no guard
// in between, until it serves the victim's slot again, checking calls on
// another master all along.
func storeFailover(t *testing.T, partialCoverage bool) {
	c, victim, other, master := failoverCluster(t, partialCoverage)
	st := open(t, c.Addrs())

	r, err := spend(st, victim, 5, 1, 2, 3)
	if err != nil || allowedCount(r) != 3 || r.Count != 3 {
		t.Fatalf("first spend: %+v, %v; want 3 allowed, count 3", r, err)
	}
	// The other budget is offered a new subject per successful call, well
	// within its limit, so its count says every call was counted once. A
	// failed call's subject is offered again: CLUSTERDOWN and a refused
	// connection mean it was not run, and if it had been, the re-offer
	// would cost nothing.
	const otherLimit = 100000
	next := uint64(1)
	spendOther := func() error {
		r, err := spend(st, other, otherLimit, next)
		if err != nil {
			return err
		}
		if allowedCount(r) != 1 || r.Count != int(next) {
			return fmt.Errorf("got %+v, want the subject allowed and count %d", r, next)
		}
		next++
		return nil
	}
	if err := spendOther(); err != nil {
		t.Fatalf("spend on the other master %s before the kill: %v", c.MasterOf(budgetTag(other)).Addr(), err)
	}
	replicas := c.ReplicasOf(master)
	if len(replicas) != 1 {
		t.Fatalf("master %s has %d replicas, want 1", master.Addr(), len(replicas))
	}
	makeDurable(t, master, victim)

	killed := time.Now()
	master.Kill()
	var promoted, served, firstDown, lastDown time.Duration
	var failures, otherCalls, otherDown int
	var lastErr error
	for time.Since(killed) < failoverBound {
		otherCalls++
		if err := spendOther(); err != nil {
			since := time.Since(killed)
			if partialCoverage || !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "CLUSTERDOWN") {
				t.Fatalf("spend on another master failed %v after the kill: %v", since.Round(time.Millisecond), err)
			}
			if otherDown == 0 {
				firstDown = since
			}
			otherDown++
			lastDown = since
		}
		if promoted == 0 {
			if role, err := replicas[0].Do("ROLE"); err == nil && strings.HasPrefix(role, "master") {
				promoted = time.Since(killed)
			}
		}
		// Re-offering counted subjects charges nothing, so probing with
		// them cannot change the budget.
		r, err := spend(st, victim, 5, 1, 2, 3)
		if err == nil {
			served = time.Since(killed)
			if allowedCount(r) != 3 || r.Count != 3 {
				t.Fatalf("first spend served after the failover: %+v; want the 3 subjects allowed, count 3 (fewer: the failover lost writes)", r)
			}
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("spend on the failed slot: %v; want an error wrapping store.ErrUnavailable", err)
		}
		failures++
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	if served == 0 {
		t.Fatalf("slot of the killed master %s not served again within %v (replica promoted after %v, 0: not seen); last error: %v", master.Addr(), failoverBound, promoted, lastErr)
	}
	if failures == 0 {
		t.Fatalf("no spend on the killed master's slot failed: the test did not see the outage")
	}
	if m := c.WaitFailover(budgetTag(victim), master, failoverBound); m != replicas[0] {
		t.Fatalf("the slot's new master is %s, want the killed master's replica %s", m.Addr(), replicas[0].Addr())
	}
	t.Logf("killed master's slot: replica promoted %v after the kill, store served the slot again after %v (%d calls failed meanwhile; last error: %v)",
		promoted.Round(time.Millisecond), served.Round(time.Millisecond), failures, lastErr)
	if otherDown == 0 {
		t.Logf("other master: served all %d calls during the outage", otherCalls)
	} else {
		t.Logf("other master: %d of %d calls refused with CLUSTERDOWN, from %v to %v after the kill", otherDown, otherCalls, firstDown.Round(time.Millisecond), lastDown.Round(time.Millisecond))
	}
	checkBudgetKept(t, st, victim)
	if err := spendOther(); err != nil {
		t.Fatalf("spend on the other master after the failover: %v", err)
	}
}

// guardFailover goes through the guard in mode closed, as warden serve
// uses the store: calls on the failed slot fail fast as unavailable, and
// succeed again after the failover without anything reopened. With the
// breaker open only one probe per cool-down reaches the store, so recovery
// comes at a probe: about 4 or 6 s after the kill with the default 2 s.
func guardFailover(t *testing.T) {
	c, victim, _, master := failoverCluster(t, false)
	cfg := guard.Config{Mode: guard.ModeClosed}
	cfg.SetDefaults()
	m, err := guard.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(open(t, c.Addrs()), cfg, m, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })

	if r, err := spend(g, victim, 5, 1, 2, 3); err != nil || allowedCount(r) != 3 {
		t.Fatalf("first spend: %+v, %v; want 3 allowed", r, err)
	}
	makeDurable(t, master, victim)

	killed := time.Now()
	master.Kill()
	// Fail fast: within the guard's timeout plus scheduling slack.
	slowest := cfg.Timeout + 250*time.Millisecond
	var served time.Duration
	var failures int
	var lastErr error
	for time.Since(killed) < failoverBound {
		start := time.Now()
		_, err := spend(g, victim, 5, 1, 2, 3)
		if took := time.Since(start); took > slowest {
			t.Fatalf("a guarded call took %v during the failover, want at most %v: %v", took.Round(time.Millisecond), slowest, err)
		}
		if err == nil {
			served = time.Since(killed)
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("guarded spend on the failed slot: %v; want an error wrapping store.ErrUnavailable", err)
		}
		failures++
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	if served == 0 {
		t.Fatalf("guarded store did not serve the slot of the killed master %s within %v (breaker %v); last error: %v", master.Addr(), failoverBound, g.State(), lastErr)
	}
	if failures == 0 {
		t.Fatalf("no guarded call failed after the kill: the test did not see the outage")
	}
	t.Logf("guarded: served again %v after the kill (%d calls failed fast as unavailable; last error: %v)", served.Round(time.Millisecond), failures, lastErr)
	checkBudgetKept(t, g, victim)
	if s := g.State(); s != guard.Closed {
		t.Fatalf("breaker %v after the failover, want closed", s)
	}
}
