package limiter_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tierq/tierq/limiter"
)

// The simulation runs worker goroutines against a synthetic model server
// that serves at most capacity calls at once and throttles the rest. Time is
// in rounds: the test goroutine is the server and the clock, and it moves
// one step at a time, waiting after each step until every worker has acted
// (acquired a permit or blocked in Acquire) before the next. Workers are
// interchangeable, so although the goroutines are scheduled in any order,
// the limiters see the same sequence of operations on every run.

const simModel = "sim-model"

// simProcess is one worker process: its limiter and its workers.
type simProcess struct {
	lim      *limiter.Adaptive
	inFlight int // calls the server knows this process has admitted

	limitSum  float64 // sum of the per-round limit after warm-up
	successes int
	drops     int
}

type simWorker struct {
	proc  int
	reply chan limiter.Outcome
}

// simEvent is a worker's report: it was admitted (permit set) or it blocked.
type simEvent struct {
	proc     int
	w        *simWorker
	admitted bool
}

type simCall struct {
	w       *simWorker
	proc    int
	due     int
	outcome limiter.Outcome
}

type simResult struct {
	procs     []*simProcess
	measured  int // rounds measured
	serverMax int
}

// runSim drives workers goroutines per limiter through rounds rounds of a
// server of the given capacity. Accepted calls take 3 to 8 rounds (drawn
// from a fixed seed); throttled ones come back after one.
func runSim(t *testing.T, clock *fakeClock, lims []*limiter.Adaptive, workers, capacity, rounds int) simResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rng := rand.New(rand.NewPCG(1, 2))
	events := make(chan simEvent, 256)
	res := simResult{}
	for i, lim := range lims {
		res.procs = append(res.procs, &simProcess{lim: lim})
		limiter.SetWaitHook(lim, func(string) { events <- simEvent{proc: i} })
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: blocked Acquires return
	work := func(w *simWorker, lim *limiter.Adaptive) {
		for {
			p, err := lim.Acquire(ctx, simModel, 1_000)
			if err != nil {
				return
			}
			events <- simEvent{proc: w.proc, w: w, admitted: true}
			select {
			case o := <-w.reply:
				p.Release(o)
			case <-ctx.Done(): // the simulation is over
				p.Release(limiter.Ignored)
				return
			}
		}
	}

	var calls []*simCall
	round, accepted := 0, 0
	admit := func(ev simEvent) {
		c := &simCall{w: ev.w, proc: ev.proc, due: round + 1, outcome: limiter.Dropped}
		if accepted < capacity {
			accepted++
			res.serverMax = max(res.serverMax, accepted)
			c.outcome, c.due = limiter.Success, round+3+rng.IntN(6)
		}
		res.procs[ev.proc].inFlight++
		calls = append(calls, c)
	}
	// settle handles events until worker w (or, if nil, anyone) has
	// reported and the server has seen every admission the limiters made.
	settle := func(w *simWorker) {
		reported := false
		for {
			consistent := true
			for _, p := range res.procs {
				if p.inFlight != p.lim.Snapshot()[0].InFlight {
					consistent = false
				}
			}
			if reported && consistent {
				return
			}
			select {
			case ev := <-events:
				if ev.admitted {
					admit(ev)
				}
				if ev.w == w || !ev.admitted {
					// Only w can block now: every other worker is either
					// waiting already or holds a call.
					reported = true
				}
			case <-time.After(failsafe):
				t.Fatalf("round %d: the workers stopped reporting", round)
			}
		}
	}

	for i, lim := range lims {
		for range workers {
			w := &simWorker{proc: i, reply: make(chan limiter.Outcome)}
			wg.Go(func() { work(w, lim) })
			settle(w)
		}
	}
	warmup := rounds / 5
	for round = 1; round <= rounds; round++ {
		clock.Advance(time.Second)
		var next []*simCall
		var due []*simCall
		for _, c := range calls {
			if c.due <= round {
				due = append(due, c)
			} else {
				next = append(next, c)
			}
		}
		calls = next
		for _, c := range due {
			p := res.procs[c.proc]
			p.inFlight--
			if c.outcome == limiter.Success {
				accepted--
				p.successes++
			} else {
				p.drops++
			}
			c.w.reply <- c.outcome
			settle(c.w)
		}
		if round > warmup {
			res.measured++
			for _, p := range res.procs {
				p.limitSum += float64(p.lim.Snapshot()[0].Limit)
			}
		}
	}
	return res
}

func simLimiter(t *testing.T, clock *fakeClock, initial int) *limiter.Adaptive {
	t.Helper()
	lim, err := limiter.NewAdaptive(limiter.Config{
		InitialLimit: initial,
		Models:       []string{simModel},
		Now:          clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

func TestSimulationConvergesNearCapacity(t *testing.T) {
	t.Parallel()
	const capacity, workers, rounds = 10, 25, 1500
	clock := newClock()
	lim := simLimiter(t, clock, 4)
	res := runSim(t, clock, []*limiter.Adaptive{lim}, workers, capacity, rounds)
	p := res.procs[0]
	avg := p.limitSum / float64(res.measured)
	dropRate := float64(p.drops) / float64(p.drops+p.successes)
	t.Logf("capacity %d: average limit %.2f, %d successes, %d throttles (%.1f%%)", capacity, avg, p.successes, p.drops, 100*dropRate)
	if avg < 0.6*capacity || avg > 1.2*capacity {
		t.Errorf("average limit %.2f, want it within 0.6..1.2 × capacity %d", avg, capacity)
	}
	if dropRate > 0.05 {
		t.Errorf("%.1f%% of calls throttled, want at most 5%%", 100*dropRate)
	}
	// Utilisation: the server should be kept reasonably busy.
	mean := 5.5 // rounds per accepted call
	if util := float64(p.successes) * mean / float64(rounds) / capacity; util < 0.6 {
		t.Errorf("server utilisation %.2f, want at least 0.6", util)
	}
}

func TestSimulationTwoProcessesShareFairly(t *testing.T) {
	t.Parallel()
	const capacity, workers, rounds = 20, 30, 3000
	clock := newClock()
	// One process starts greedy, the other at the floor: AIMD must still
	// bring them to similar shares.
	lims := []*limiter.Adaptive{simLimiter(t, clock, 24), simLimiter(t, clock, 1)}
	res := runSim(t, clock, lims, workers, capacity, rounds)
	total := 0
	for _, p := range res.procs {
		total += p.successes
	}
	var summary string
	for i, p := range res.procs {
		summary += fmt.Sprintf(" process %d: avg limit %.2f, %d successes, %d throttles;", i, p.limitSum/float64(res.measured), p.successes, p.drops)
	}
	t.Logf("capacity %d:%s", capacity, summary)
	for i, p := range res.procs {
		if share := float64(p.successes) / float64(total); share < 0.3 {
			t.Errorf("process %d got %.0f%% of the successful calls, want at least 30%%", i, 100*share)
		}
	}
	drops := res.procs[0].drops + res.procs[1].drops
	if rate := float64(drops) / float64(drops+total); rate > 0.1 {
		t.Errorf("%.1f%% of calls throttled, want at most 10%%", 100*rate)
	}
}
