package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Decisions that wait on a remote store (Redis) leave the loop's thread
// but not, as a rule, its turn. A goroutine per decision that resumed on
// the loop through Execute cost every request a goroutine start with its
// stack grown to the store client's depth, a wake-up of the loop and,
// with the loop's thread asleep in epoll_wait meanwhile, the scheduler's
// and sysmon's work of taking its P back: row (f) of warden bench ran at
// 0.54-0.58x of row (d), at twice its CPU per request.
//
// Now the loop gathers the decisions its round of events starts
// (offLoop), and runs them together at the end of the round
// (runDecisions): each on a decider, a goroutine kept for the next
// decision, while the loop waits for all of them, at most
// loopDecideWait. Waiting, the loop's thread runs the deciders itself;
// the decisions of a round reach the store together, so Redis decides
// them in one batched call (internal/store/redis, batch.go); and the loop
// resumes each exchange directly. A decision still running when the wait
// ends (a slow or failing store) resumes through Execute, as before, so a
// slow store holds the loop at most loopDecideWait per round.

// loopDecideWait bounds how long a loop waits for a round's decisions.
const loopDecideWait = 2 * time.Millisecond

// maxIdleDeciders bounds the deciders kept waiting for work.
const maxIdleDeciders = 256

// decision is one exchange's decision, run off the loop's goroutine.
type decision struct {
	cl   *clientConn
	work func() bool
	then func(*clientConn, bool)
	// Set by the decider, read by the loop once the round holds mu.
	ok     bool
	failed any
	done   bool
	round  *decisionRound
}

// decisionRound is the decisions one runDecisions started.
type decisionRound struct {
	mu      sync.Mutex
	left    int           // decisions still running
	waiting bool          // the loop still waits for the round
	all     chan struct{} // closed when left reaches 0 while waiting
}

// offLoop has work, a decision that may wait on a remote store, run off
// the loop's goroutine at the end of this round of events, then then on
// the loop with its result. Meanwhile the loop leaves cl's request and
// answer alone (cl.deciding), and a client that leaves is only marked
// gone: its exchange ends when then would run.
func (ls *loopState) offLoop(cl *clientConn, work func() bool, then func(*clientConn, bool)) {
	cl.deciding = true
	ls.decisions = append(ls.decisions, &decision{cl: cl, work: work, then: then})
	if len(ls.decisions) > 1 {
		return
	}
	// Tasks run once the round's events are handled: the round's other
	// requests join this one.
	err := ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		ls.runDecisions()
		return nil
	}))
	if err != nil { // the loops have stopped: the exchanges end here
		for range ls.decisions {
			ls.f.g.m.inflight.Dec()
			ls.f.busy.Add(-1)
		}
		ls.decisions = ls.decisions[:0]
	}
}

// runDecisions runs the gathered decisions and waits for them, at most
// loopDecideWait; those done resume here, the others through Execute.
func (ls *loopState) runDecisions() {
	ds := ls.decisions
	ls.decisions = nil
	if len(ds) == 0 {
		return
	}
	r := &decisionRound{left: len(ds), waiting: true, all: make(chan struct{})}
	for _, d := range ds {
		d.round = r
		ls.f.decide(func() { ls.decide(d) })
	}
	if ls.timer == nil {
		ls.timer = time.NewTimer(loopDecideWait)
	} else {
		ls.timer.Reset(loopDecideWait)
	}
	select {
	case <-r.all:
		ls.timer.Stop()
	case <-ls.timer.C:
	}
	r.mu.Lock()
	r.waiting = false
	r.mu.Unlock()
	for _, d := range ds {
		if d.done { // written before the round's mu was released
			ls.resume(d)
		}
	}
}

// decide runs d's work on a decider and hands the result to the loop: to
// the round when the loop still waits for it, else through Execute.
func (ls *loopState) decide(d *decision) {
	func() {
		defer func() { d.failed = recover() }()
		d.ok = d.work()
	}()
	r := d.round
	r.mu.Lock()
	if r.waiting {
		d.done = true
		r.left--
		if r.left == 0 {
			close(r.all)
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	err := ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		ls.resume(d)
		return nil
	}))
	if err != nil { // the loops have stopped: the exchange ends here
		ls.f.g.m.inflight.Dec()
		ls.f.busy.Add(-1)
	}
}

// resume continues d's exchange on the loop.
func (ls *loopState) resume(d *decision) {
	cl := d.cl
	cl.deciding = false
	switch {
	case cl.gone:
		ls.endExchange(cl)
	case d.failed != nil:
		ls.panicked(cl, d.failed)
	default:
		d.then(cl, d.ok)
	}
}

// decide runs fn on an idle decider, or on a new one when none waits. A
// decider stays for the next decision: a goroutine per decision cost its
// start and, every time, the growth of a fresh stack to the depth of the
// store client.
func (f *loopFront) decide(fn func()) {
	select {
	case f.decisions <- fn:
	default:
		go f.decider(fn)
	}
}

func (f *loopFront) decider(fn func()) {
	for {
		fn()
		if f.idle.Add(1) > maxIdleDeciders {
			f.idle.Add(-1)
			return
		}
		select {
		case fn = <-f.decisions:
			f.idle.Add(-1)
		case <-f.stop:
			f.idle.Add(-1)
			return
		}
	}
}
