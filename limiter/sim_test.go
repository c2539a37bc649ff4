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
// that throttles what it cannot serve: at most capacity calls at once
// (capacityServer), or a token quota per fixed window the way Bedrock and
// bedrocksim count TPM (quotaServer). Time is
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
	// after warm-up
	measuredSuccesses int
	measuredDrops     int
}

// simServer decides each call's fate.
type simServer interface {
	// admit reports whether a call reserving tokens that arrives in round
	// is served (else it is throttled).
	admit(round, tokens int) bool
	// done reports that a served call that arrived in round from ended.
	done(round, from, tokens int)
}

// capacityServer serves at most capacity calls at once.
type capacityServer struct {
	capacity, accepted, peak int
}

func (s *capacityServer) admit(_, _ int) bool {
	if s.accepted >= s.capacity {
		return false
	}
	s.accepted++
	s.peak = max(s.peak, s.accepted)
	return true
}

func (s *capacityServer) done(_, _, _ int) { s.accepted-- }

// quotaServer is a TPM quota as bedrocksim keeps it: windows of window
// rounds, each admitting calls while the reservations admitted in it plus
// those of calls still running from earlier windows fit quota.
type quotaServer struct {
	window, quota int

	current  int // window index
	used     int // reservations admitted in the current window
	carried  int // reservations of running calls from earlier windows
	reserved int // reservations of every running call
	served   map[int]int
}

func (s *quotaServer) roll(round int) {
	if w := round / s.window; w != s.current {
		s.current, s.used, s.carried = w, 0, s.reserved
	}
}

func (s *quotaServer) admit(round, tokens int) bool {
	s.roll(round)
	if s.used+s.carried+tokens > s.quota {
		return false
	}
	s.used += tokens
	s.reserved += tokens
	if s.served == nil {
		s.served = map[int]int{}
	}
	s.served[s.current] += tokens
	return true
}

func (s *quotaServer) done(round, from, tokens int) {
	s.roll(round)
	s.reserved -= tokens
	if from/s.window != s.current {
		s.carried -= tokens
	}
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
	from    int
	due     int
	outcome limiter.Outcome
}

type simResult struct {
	procs    []*simProcess
	measured int // rounds measured
}

// simTokens is every simulated call's reservation.
const simTokens = 1_000

// runSim drives workers goroutines per limiter through rounds rounds of
// server. Served calls take 3 to 8 rounds (drawn from a fixed seed);
// throttled ones come back after one. Each round is a second on clock, and
// its timers run at the start of the round.
func runSim(t *testing.T, clock *fakeClock, lims []*limiter.Adaptive, workers int, server simServer, rounds int) simResult {
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
			p, err := lim.Acquire(ctx, simModel, simTokens)
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
	round := 0
	admit := func(ev simEvent) {
		c := &simCall{w: ev.w, proc: ev.proc, from: round, due: round + 1, outcome: limiter.Dropped}
		if server.admit(round, simTokens) {
			c.outcome, c.due = limiter.Success, round+3+rng.IntN(6)
		}
		res.procs[ev.proc].inFlight++
		calls = append(calls, c)
	}
	// settle handles events until worker w has reported (if w is not nil)
	// and the server has seen every admission the limiters made.
	settle := func(w *simWorker) {
		reported := w == nil
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
				if w != nil && (ev.w == w || !ev.admitted) {
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
		settle(nil) // calls admitted as reservations left a rate window
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
				server.done(round, c.from, simTokens)
				p.successes++
				if round > warmup {
					p.measuredSuccesses++
				}
			} else {
				p.drops++
				if round > warmup {
					p.measuredDrops++
				}
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
		AfterFunc:    clock.AfterFunc,
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
	res := runSim(t, clock, []*limiter.Adaptive{lim}, workers, &capacityServer{capacity: capacity}, rounds)
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
	res := runSim(t, clock, lims, workers, &capacityServer{capacity: capacity}, rounds)
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

// The quota simulations use the default one-minute window against a quota
// counted in fixed 60-round windows, as Bedrock counts TPM per minute.
const quotaWindow = 60

func TestSimulationPacesTokenQuota(t *testing.T) {
	t.Parallel()
	// 60 calls of 1,000 tokens a minute, each lasting 5.5s on average: about
	// 5.5 calls in flight serve it, far below the 40 workers.
	const quota, workers, rounds = 60_000, 40, 40 * quotaWindow
	clock := newClock()
	lim := simLimiter(t, clock, 4)
	srv := &quotaServer{window: quotaWindow, quota: quota, current: -1}
	res := runSim(t, clock, []*limiter.Adaptive{lim}, workers, srv, rounds)
	p := res.procs[0]
	throttled := float64(p.measuredDrops) / float64(p.measuredDrops+p.measuredSuccesses)
	util := quotaUse(srv, rounds)
	t.Logf("quota %d/window: %d successes, %d throttles; after warm-up %.1f%% throttled, quota used %.1f%%; final %+v",
		quota, p.successes, p.drops, 100*throttled, 100*util, lim.Snapshot()[0])
	if throttled >= 0.03 {
		t.Errorf("%.1f%% of calls throttled after warm-up, want under 3%%", 100*throttled)
	}
	if util < 0.9 {
		t.Errorf("quota used %.1f%% after warm-up, want at least 90%%", 100*util)
	}
}

func TestSimulationTwoProcessesShareTokenQuota(t *testing.T) {
	t.Parallel()
	const quota, workers, rounds = 120_000, 40, 200 * quotaWindow
	clock := newClock()
	lims := []*limiter.Adaptive{simLimiter(t, clock, 24), simLimiter(t, clock, 1)}
	srv := &quotaServer{window: quotaWindow, quota: quota, current: -1}
	res := runSim(t, clock, lims, workers, srv, rounds)
	total, drops := 0, 0
	var summary string
	for i, p := range res.procs {
		total += p.measuredSuccesses
		drops += p.measuredDrops
		summary += fmt.Sprintf(" process %d: %d successes, %d throttles after warm-up, final %+v;", i, p.measuredSuccesses, p.measuredDrops, p.lim.Snapshot()[0])
	}
	util := quotaUse(srv, rounds)
	t.Logf("quota %d/window, used %.1f%%:%s", quota, 100*util, summary)
	for i, p := range res.procs {
		if share := float64(p.measuredSuccesses) / float64(total); share < 0.35 {
			t.Errorf("process %d got %.0f%% of the successful calls after warm-up, want at least 35%%", i, 100*share)
		}
	}
	if rate := float64(drops) / float64(drops+total); rate >= 0.03 {
		t.Errorf("%.1f%% of calls throttled after warm-up, want under 3%%", 100*rate)
	}
	if util < 0.9 {
		t.Errorf("quota used %.1f%% after warm-up, want at least 90%%", 100*util)
	}
}

// quotaUse is the share of the quota served in the whole windows after the
// simulation's warm-up (its first fifth).
func quotaUse(s *quotaServer, rounds int) float64 {
	first, last := (rounds/5)/s.window+1, rounds/s.window-1
	served := 0
	for w := first; w <= last; w++ {
		served += s.served[w]
	}
	return float64(served) / float64((last-first+1)*s.quota)
}
