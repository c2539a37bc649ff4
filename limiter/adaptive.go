package limiter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons passed to Config.OnChange.
const (
	// ReasonDropped: a call admitted under the current limit was throttled.
	ReasonDropped = "dropped"
	// ReasonInUse: successes while the limit or budget was in use grew it.
	ReasonInUse = "in use"
	// ReasonRateCut: a throttle set or cut the learned tokens-per-window rate.
	ReasonRateCut = "rate cut"
	// ReasonRateGrew: the rate held calls back for a whole window without
	// a throttle, so it grew.
	ReasonRateGrew = "rate grew"
)

// State is one model's limiter as Snapshot and OnChange report it.
type State struct {
	Model string
	// Limit is how many calls may be in flight at once.
	Limit int
	// InFlight is how many calls hold a permit.
	InFlight int
	// Waiting is how many calls are blocked in Acquire.
	Waiting int
	// TokenBudget is the learned cap on the reservations in flight.
	TokenBudget int
	// TokensInFlight is the sum of the reservations of the calls in flight.
	TokensInFlight int
	// Rate is the learned cap on the tokens reserved per Config.Window;
	// 0 until the model's first throttle (no pacing).
	Rate int
	// TokensInWindow is the sum of the reservations admitted in the last
	// Window whose calls were not throttled.
	TokensInWindow int
	// Drops and Successes count released permits by outcome since the
	// limiter was created.
	Drops     int64
	Successes int64
	// LastChange is when the limit or budget last changed as reported to
	// OnChange; zero if never.
	LastChange time.Time
}

// Adaptive limits calls per model and learns each model's limit, token
// budget and rate from the outcomes its callers report. See the package
// documentation for the rules. It is safe for concurrent use.
//
// Each model composes four controllers, each a plain value with its own
// file: aimd (concurrency limit and token budget), pacer (tokens per
// window), fifo (the order waiting calls are served in) and dropScore (for
// Backoff). Adaptive's one lock serialises them; the methods below that say
// "a.mu must be held" are the composition.
type Adaptive struct {
	cfg Config

	mu     sync.Mutex
	models map[string]*model
	// pending are OnChange calls collected under mu; unlock makes them.
	pending []change
	// waitHook, if set, is called (without the lock) when an Acquire is
	// about to block; tests use it to know a waiter is queued.
	waitHook func(model string)
}

// model is one model's controllers and counters; guarded by Adaptive.mu.
type model struct {
	name  string
	conc  aimd
	rate  pacer
	queue fifo
	// recentDrops decays; drops and successes count since creation.
	recentDrops      dropScore
	drops, successes int64
	lastChange       time.Time
	// wakeAt is when the pending wake-up timer fires (zero if none);
	// stopWake cancels it.
	wakeAt   time.Time
	stopWake func() bool
}

// change is an OnChange call collected under the lock and made after it.
type change struct {
	model    string
	old, new State
	reason   string
}

// NewAdaptive returns a limiter configured by cfg, with defaults applied to
// its zero fields.
func NewAdaptive(cfg Config) (*Adaptive, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("limiter config: %w", err)
	}
	cfg.Models = slices.Clone(cfg.Models)
	a := &Adaptive{cfg: cfg, models: map[string]*model{}}
	for _, m := range cfg.Models {
		a.model(m)
	}
	return a, nil
}

// model returns the named model, creating it on first use.
// a.mu must be held.
func (a *Adaptive) model(name string) *model {
	m, ok := a.models[name]
	if !ok {
		m = &model{
			name:  name,
			conc:  newAIMD(&a.cfg),
			rate:  newPacer(&a.cfg),
			queue: fifo{maxBypass: a.cfg.MaxBypass},
		}
		a.models[name] = m
	}
	return m
}

// Acquire waits until model can take a call reserving tokens (its estimated
// input + maxTokens), or until ctx ends. Callers wait in FIFO order per model,
// except that up to Config.MaxBypass calls that fit the token budget may pass
// one that does not. A call larger than the whole budget is admitted once
// nothing else is in flight for its model.
func (a *Adaptive) Acquire(ctx context.Context, model string, tokens int) (Permit, error) {
	if model == "" {
		return nil, errors.New("acquire a permit: model ID is empty")
	}
	if tokens < 0 {
		return nil, fmt.Errorf("acquire a %s permit: tokens must not be negative, got %d", model, tokens)
	}
	// An ended context never takes a permit, so a cancelled caller cannot
	// win a race against waiters that still want one.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wait for a %s permit: %w", model, err)
	}

	a.mu.Lock()
	m := a.model(model)
	m.rate.note(tokens)
	w := &waiter{tokens: tokens, ready: make(chan struct{})}
	m.queue.push(w)
	a.dispatch(m)
	if w.permit != nil {
		a.unlock()
		return w.permit, nil
	}
	hook := a.waitHook
	a.unlock()
	if hook != nil {
		hook(model)
	}

	select {
	case <-w.ready:
		return w.permit, nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	if p := w.permit; p != nil {
		// Admitted while ctx ended: hand the permit back unused. The caller
		// never sees it, so marking it released makes any other release a
		// no-op; never sent, it reserved nothing.
		p.released.Store(true)
		m.conc.release(p.tokens)
		m.rate.unreserve(p.ticket)
	} else {
		m.queue.remove(w)
	}
	// Either way capacity or the head of the queue may have changed.
	a.dispatch(m)
	a.unlock()
	return nil, fmt.Errorf("wait for a %s permit: %w", model, ctx.Err())
}

// dispatch admits waiters of m while the limit has room, in the queue's
// order, each that fits the token budget and the rate. If the rate holds a
// waiter back, that counts as the rate holding calls back, and a timer is
// set for when enough reservations will have left the window.
// a.mu must be held.
func (a *Adaptive) dispatch(m *model) {
	now := a.cfg.Now()
	a.advance(m, now)
	var rateBlocked *waiter // first waiter the rate holds back
	m.queue.serve(m.conc.open, func(w *waiter) bool {
		if m.conc.fits(w.tokens) && m.rate.fits(w.tokens) {
			return true
		}
		if rateBlocked == nil && !m.rate.fits(w.tokens) {
			rateBlocked = w
		}
		return false
	}, func(w *waiter) {
		w.permit = &adaptivePermit{a: a, m: m, tokens: w.tokens,
			epoch: m.conc.admit(w.tokens), ticket: m.rate.admit(now, w.tokens)}
		close(w.ready)
	})
	if rateBlocked != nil {
		m.rate.hold(now)
		a.wakeAt(m, m.rate.fitsAt(rateBlocked.tokens), now)
	}
}

// advance moves m's rate window to now, reporting growth. Every operation
// that changes m calls it first; queries look at m.rate.at(now) instead.
// a.mu must be held.
func (a *Adaptive) advance(m *model, now time.Time) {
	m.rate.expire(now)
	if !m.rate.periodOver(now) {
		return
	}
	old := m.state()
	if m.rate.roll(now) {
		a.report(m, old, ReasonRateGrew, now)
	}
}

// wakeAt makes sure dispatch runs for m by at. a.mu must be held.
func (a *Adaptive) wakeAt(m *model, at, now time.Time) {
	if !m.wakeAt.IsZero() && !m.wakeAt.After(at) {
		return // an earlier wake-up will look again
	}
	if m.stopWake != nil {
		m.stopWake()
	}
	m.wakeAt = at
	m.stopWake = a.cfg.AfterFunc(max(at.Sub(now), 0), func() {
		a.mu.Lock()
		if m.wakeAt.Equal(at) {
			m.wakeAt, m.stopWake = time.Time{}, nil
		}
		a.dispatch(m)
		a.unlock()
	})
}

// report collects an OnChange call for a change of m at now from old.
// a.mu must be held.
func (a *Adaptive) report(m *model, old State, reason string, now time.Time) {
	m.lastChange = now
	m.conc.reported()
	a.pending = append(a.pending, change{model: m.name, old: old, new: m.state(), reason: reason})
}

// unlock releases a.mu and then makes the OnChange calls collected under it.
func (a *Adaptive) unlock() {
	changes := a.pending
	a.pending = nil
	a.mu.Unlock()
	if a.cfg.OnChange != nil {
		for _, c := range changes {
			a.cfg.OnChange(c.model, c.old, c.new, c.reason)
		}
	}
}

// state is m's State as of its last operation.
func (m *model) state() State { return m.stateWith(&m.rate) }

// stateAt is m's State at now, without advancing m.
func (m *model) stateAt(now time.Time) State {
	r := m.rate.at(now)
	return m.stateWith(&r)
}

func (m *model) stateWith(r *pacer) State {
	return State{
		Model:          m.name,
		Limit:          m.conc.intLimit(),
		InFlight:       m.conc.inFlight,
		Waiting:        m.queue.waiting(),
		TokenBudget:    m.conc.intBudget(),
		TokensInFlight: m.conc.tokens,
		Rate:           r.intRate(),
		TokensInWindow: r.windowTokens,
		Drops:          m.drops,
		Successes:      m.successes,
		LastChange:     m.lastChange,
	}
}

// release applies the outcome of p's call to its model and admits waiters.
func (a *Adaptive) release(p *adaptivePermit, o Outcome) {
	a.mu.Lock()
	m := p.m
	now := a.cfg.Now()
	a.advance(m, now)
	// What was in use is judged with the reporting call still counted: it
	// was part of the load the outcome answers for.
	countUsed, tokensUsed := m.conc.inUse(m.queue.head())
	m.conc.release(p.tokens)
	current := m.conc.current(p.epoch)
	switch o {
	case Success:
		m.successes++
		// While the rate holds calls back, more concurrency would only
		// queue them: the limit grows only when the rate is not what binds.
		if current && !m.rate.full() {
			old := m.state()
			if m.conc.grow(p.tokens, countUsed, tokensUsed) {
				a.report(m, old, ReasonInUse, now)
			}
		}
	case Dropped:
		m.drops++
		m.recentDrops.add(now)
		// A throttled call reserved nothing (Bedrock and the simulator
		// reserve only for admitted calls), so it leaves the window.
		m.rate.unreserve(p.ticket)
		old := m.state()
		cut, windowCut := m.rate.throttled(now, p.ticket)
		if cut {
			a.report(m, old, ReasonRateCut, now)
		}
		// The limit decreases once per burst (calls admitted before the
		// last decrease are the same congestion event, as TCP's one
		// decrease per window). Once a rate is learned, a quota minute's
		// overshoot is the rate's to answer, so the limit decreases at most
		// once per window, with the rate's first cut.
		if current && windowCut {
			old := m.state()
			if m.conc.shrink(countUsed, tokensUsed) {
				a.report(m, old, ReasonDropped, now)
			}
		}
	default:
		// Ignored (and any unknown outcome): the call says nothing about
		// capacity; only the permit is freed. Its reservation stays in the
		// window: the call may have reached the model.
	}
	a.dispatch(m)
	a.unlock()
}

// Backoff suggests how long a caller should wait after a drop on model
// before it acquires again: BackoffBase times the model's recent drops
// (decaying with a 10s half-life), capped at BackoffMax, with equal jitter
// (half fixed, half random) so callers throttled together do not return
// together. Waiting is the caller's choice; the limiter itself never sleeps.
//
// If the model's rate window is full, the wait also covers the time until
// enough reservations leave it for the calls already waiting plus one more:
// before that an Acquire would only queue, and a throttled call's job holds
// no worker slot meanwhile. Backoff changes nothing in the limiter.
func (a *Adaptive) Backoff(model string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	var drops float64
	var until time.Duration
	if m, ok := a.models[model]; ok {
		drops = m.recentDrops.decayed(now)
		r := m.rate.at(now)
		if at := r.fitsAt(r.next() + m.queue.tokens()); !at.IsZero() {
			until = max(at.Sub(now), 0)
		}
	}
	return backoff(a.cfg.BackoffBase, a.cfg.BackoffMax, drops, until, a.cfg.Rand())
}

// Available is how many more calls the limiters could admit soon, summed over
// the models in Config.Models and every model acquired so far: each model's
// limit minus its calls in flight and its waiters (which take free slots
// first), never below zero; and, once a model's rate is learned, no more
// than the average calls that still fit its rate window. It feeds the
// worker's receive loop, which thus stops taking jobs while a model's
// window is full instead of holding them in Acquire.
//
// It moves no window and changes no limit, so how often it is called does
// not matter. Its one effect is that a model it reports as held back by
// its rate (0 with room under the limit) counts, for the rate's growth, as
// a call the rate held back: behind a receive loop that takes only what
// Available reports, that is the only sign of demand the rate could not
// serve. Calling it again before anything changes records nothing new.
func (a *Adaptive) Available() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	n := 0
	for _, m := range a.models {
		r := m.rate.at(now)
		waiting := m.queue.waiting()
		free := m.conc.free(waiting)
		if r.rate > 0 && free > 0 {
			fit := r.room(waiting)
			if fit <= 0 {
				m.rate.hold(now)
			}
			free = min(free, max(0, fit))
		}
		n += free
	}
	return n
}

// Snapshot returns every known model's state, sorted by model ID. It changes
// nothing.
func (a *Adaptive) Snapshot() []State {
	a.mu.Lock()
	now := a.cfg.Now()
	out := make([]State, 0, len(a.models))
	for _, m := range a.models {
		out = append(out, m.stateAt(now))
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

type adaptivePermit struct {
	a      *Adaptive
	m      *model
	tokens int
	// epoch and ticket are what the model's limits and rate window need
	// back with the call's outcome.
	epoch    uint64
	ticket   ticket
	released atomic.Bool
}

// Release frees the permit and reports how its call ended. Only the first
// call counts; later ones do nothing. It is safe from any goroutine.
func (p *adaptivePermit) Release(o Outcome) {
	if !p.released.CompareAndSwap(false, true) {
		return
	}
	p.a.release(p, o)
}
