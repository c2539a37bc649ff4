package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
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
)

// dropHalfLife is how fast Backoff forgets drops: a drop counts half as much
// this long after it happened. Ten seconds spans several Bedrock calls, so a
// model that throttles every few calls keeps a longer suggested wait.
const dropHalfLife = 10 * time.Second

// epsilon absorbs float error when a learned limit is turned into a count of
// calls (6.9999999 is 7).
const epsilon = 1e-9

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
	// Drops and Successes count released permits by outcome since the
	// limiter was created.
	Drops     int64
	Successes int64
	// LastChange is when the limit or budget last changed as reported to
	// OnChange; zero if never.
	LastChange time.Time
}

// Adaptive limits calls per model and learns each model's limit and token
// budget from the outcomes its callers report. See the package documentation
// for the rules. It is safe for concurrent use.
type Adaptive struct {
	cfg Config

	mu     sync.Mutex
	models map[string]*model
	// waitHook, if set, is called (without the lock) when an Acquire is
	// about to block; tests use it to know a waiter is queued.
	waitHook func(model string)
}

// model is one model's limiter state; guarded by Adaptive.mu.
type model struct {
	name string
	// limit and budget are learned as floats so additive increase can add
	// fractions of a call per success; admission uses their floors.
	limit  float64
	budget float64
	// epoch counts decreases. A permit remembers the epoch it was admitted
	// in, and only outcomes of permits from the current epoch move the
	// limits: they are the only ones that say anything about them.
	epoch    uint64
	inFlight int
	tokens   int
	queue    []*waiter

	drops, successes int64
	lastChange       time.Time
	// reportedLimit and reportedBudget are the values OnChange last saw, so
	// increases are reported once per whole call or TokenIncrease, not per
	// success.
	reportedLimit  int
	reportedBudget float64
	// dropScore is the number of recent drops, halving every dropHalfLife
	// since dropAt.
	dropScore float64
	dropAt    time.Time
}

type waiter struct {
	tokens int
	// ready is closed once permit is set.
	ready  chan struct{}
	permit *adaptivePermit
	// bypassed counts later calls admitted ahead of this one while it did
	// not fit the token budget.
	bypassed int
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

// model returns the named model's state, creating it on first use.
// a.mu must be held.
func (a *Adaptive) model(name string) *model {
	m, ok := a.models[name]
	if !ok {
		m = &model{
			name:           name,
			limit:          float64(a.cfg.InitialLimit),
			budget:         float64(a.cfg.InitialTokens),
			reportedLimit:  a.cfg.InitialLimit,
			reportedBudget: float64(a.cfg.InitialTokens),
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
	w := &waiter{tokens: tokens, ready: make(chan struct{})}
	m.queue = append(m.queue, w)
	a.dispatch(m)
	if w.permit != nil {
		a.mu.Unlock()
		return w.permit, nil
	}
	hook := a.waitHook
	a.mu.Unlock()
	if hook != nil {
		hook(model)
	}

	select {
	case <-w.ready:
		return w.permit, nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	if w.permit != nil {
		// Admitted while ctx ended: hand the permit back unused. The caller
		// never sees it, so marking it released makes any other release a
		// no-op.
		w.permit.released.Store(true)
		a.free(m, w.permit)
	} else {
		m.queue = slices.DeleteFunc(m.queue, func(x *waiter) bool { return x == w })
	}
	// Either way capacity or the head of the queue may have changed.
	a.dispatch(m)
	a.mu.Unlock()
	return nil, fmt.Errorf("wait for a %s permit: %w", model, ctx.Err())
}

// dispatch admits waiters of m in FIFO order while they fit, letting calls
// that fit the token budget pass the first one that does not, at most
// MaxBypass times. a.mu must be held.
func (a *Adaptive) dispatch(m *model) {
	var blocked *waiter // first waiter that does not fit the token budget
	for i := 0; i < len(m.queue); {
		if m.inFlight >= m.intLimit() {
			return
		}
		w := m.queue[i]
		if !m.fits(w.tokens) {
			if blocked == nil {
				blocked = w
			}
			if a.cfg.MaxBypass < 0 {
				return
			}
			i++
			continue
		}
		if blocked != nil {
			if blocked.bypassed >= a.cfg.MaxBypass {
				return
			}
			blocked.bypassed++
		}
		m.queue = slices.Delete(m.queue, i, i+1)
		m.inFlight++
		m.tokens += w.tokens
		w.permit = &adaptivePermit{a: a, m: m, tokens: w.tokens, epoch: m.epoch}
		close(w.ready)
	}
}

// intLimit is the number of calls the learned limit allows.
func (m *model) intLimit() int { return int(math.Floor(m.limit + epsilon)) }

// intBudget is the number of tokens the learned budget allows.
func (m *model) intBudget() int { return int(math.Floor(m.budget + epsilon)) }

// fits reports whether a call reserving tokens fits m's token budget now.
// A call larger than the whole budget fits when nothing is in flight, so it
// is never starved.
func (m *model) fits(tokens int) bool {
	return m.inFlight == 0 || m.tokens+tokens <= m.intBudget()
}

func (m *model) state() State {
	return State{
		Model:          m.name,
		Limit:          m.intLimit(),
		InFlight:       m.inFlight,
		Waiting:        len(m.queue),
		TokenBudget:    m.intBudget(),
		TokensInFlight: m.tokens,
		Drops:          m.drops,
		Successes:      m.successes,
		LastChange:     m.lastChange,
	}
}

// free returns p's share of m's capacity. a.mu must be held.
func (a *Adaptive) free(m *model, p *adaptivePermit) {
	m.inFlight--
	m.tokens -= p.tokens
}

// release applies the outcome of p's call to its model and admits waiters.
func (a *Adaptive) release(p *adaptivePermit, o Outcome) {
	var changes []change
	a.mu.Lock()
	m := p.m
	// What was in use is judged with the reporting call still counted: it
	// was part of the load the outcome answers for.
	countUsed, tokensUsed := a.inUse(m)
	a.free(m, p)
	current := p.epoch == m.epoch
	switch o {
	case Success:
		m.successes++
		if current {
			if c, ok := a.grow(m, p, countUsed, tokensUsed); ok {
				changes = append(changes, c)
			}
		}
	case Dropped:
		m.drops++
		a.noteDrop(m)
		// Every call admitted before the last decrease was sent at a limit
		// already cut; its throttle is the same congestion event, so it
		// must not cut again (one decrease per burst, as TCP does per
		// window). Later calls were admitted under the cut limit, so their
		// throttles are new evidence.
		if current {
			if c, ok := a.shrink(m, countUsed, tokensUsed); ok {
				changes = append(changes, c)
			}
		}
	default:
		// Ignored (and any unknown outcome): the call says nothing about
		// capacity; only the permit is freed.
	}
	a.dispatch(m)
	a.mu.Unlock()
	if a.cfg.OnChange != nil {
		for _, c := range changes {
			a.cfg.OnChange(c.model, c.old, c.new, c.reason)
		}
	}
}

// inUse reports whether m's limit and token budget are in use: whether the
// calls (tokens) in flight reach UsedFraction of them, or, for tokens,
// whether the first waiter is held back by the budget. a.mu must be held.
func (a *Adaptive) inUse(m *model) (count, tokens bool) {
	need := int(math.Ceil(a.cfg.UsedFraction*float64(m.intLimit()) - epsilon))
	count = m.inFlight >= max(1, need)
	tokens = float64(m.tokens) >= a.cfg.UsedFraction*m.budget-epsilon
	if !tokens && len(m.queue) > 0 {
		tokens = m.tokens+m.queue[0].tokens > m.intBudget()
	}
	return count, tokens
}

// grow applies additive increase for p's success. Only what was in use
// grows: an idle limit would otherwise drift to its maximum and let the next
// burst overrun the quota, and in a fleet sharing one quota it would take the
// share of processes that are busy. a.mu must be held.
func (a *Adaptive) grow(m *model, p *adaptivePermit, countUsed, tokensUsed bool) (change, bool) {
	old := m.state()
	if countUsed {
		m.limit = min(float64(a.cfg.MaxLimit), m.limit+a.cfg.Increase/m.limit)
	}
	if tokensUsed && p.tokens > 0 {
		// A budget's worth of reservations adds TokenIncrease, whatever the
		// budget's size, as for the limit; a call larger than the budget
		// counts as one budget so a huge one cannot jump it.
		share := min(float64(p.tokens), m.budget) / m.budget
		m.budget = min(float64(a.cfg.MaxTokens), m.budget+float64(a.cfg.TokenIncrease)*share)
	}
	if m.intLimit() == m.reportedLimit && m.budget-m.reportedBudget < float64(a.cfg.TokenIncrease) {
		return change{}, false
	}
	return a.changed(m, old, ReasonInUse), true
}

// shrink applies multiplicative decrease for a counted drop to what was in
// use; if neither looked in use (another process took the quota, or a
// rate quota ran out), both shrink. a.mu must be held.
func (a *Adaptive) shrink(m *model, countUsed, tokensUsed bool) (change, bool) {
	old := m.state()
	m.epoch++
	if !countUsed && !tokensUsed {
		countUsed, tokensUsed = true, true
	}
	if countUsed {
		m.limit = max(float64(a.cfg.MinLimit), m.limit*a.cfg.Decrease)
	}
	if tokensUsed {
		m.budget = max(float64(a.cfg.MinTokens), m.budget*a.cfg.Decrease)
	}
	if m.intLimit() == old.Limit && m.intBudget() == old.TokenBudget {
		return change{}, false // already at the floors
	}
	return a.changed(m, old, ReasonDropped), true
}

// changed records a reported change of m. a.mu must be held.
func (a *Adaptive) changed(m *model, old State, reason string) change {
	m.lastChange = a.cfg.Now()
	m.reportedLimit = m.intLimit()
	m.reportedBudget = m.budget
	return change{model: m.name, old: old, new: m.state(), reason: reason}
}

// noteDrop adds a drop to m's decaying drop score. a.mu must be held.
func (a *Adaptive) noteDrop(m *model) {
	now := a.cfg.Now()
	m.dropScore = m.decayedDrops(now) + 1
	m.dropAt = now
}

func (m *model) decayedDrops(now time.Time) float64 {
	if m.dropScore == 0 {
		return 0
	}
	age := max(now.Sub(m.dropAt), 0)
	return m.dropScore * math.Exp2(-float64(age)/float64(dropHalfLife))
}

// Backoff suggests how long a caller should wait after a drop on model
// before it acquires again: BackoffBase times the model's recent drops
// (decaying with a 10s half-life), capped at BackoffMax, with equal jitter
// (half fixed, half random) so callers throttled together do not return
// together. Waiting is the caller's choice; the limiter itself never sleeps.
func (a *Adaptive) Backoff(model string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 1.0
	if m, ok := a.models[model]; ok {
		n = max(1, m.decayedDrops(a.cfg.Now()))
	}
	d := min(float64(a.cfg.BackoffMax), float64(a.cfg.BackoffBase)*n)
	return time.Duration(d/2 + a.cfg.Rand()*d/2)
}

// Available is how many more calls the limiters could admit soon, summed over
// the models in Config.Models and every model acquired so far: each model's
// limit minus its calls in flight and its waiters (which take free slots
// first), never below zero. It feeds the worker's receive loop.
func (a *Adaptive) Available() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.models {
		n += max(0, m.intLimit()-m.inFlight-len(m.queue))
	}
	return n
}

// Snapshot returns every known model's state, sorted by model ID.
func (a *Adaptive) Snapshot() []State {
	a.mu.Lock()
	out := make([]State, 0, len(a.models))
	for _, m := range a.models {
		out = append(out, m.state())
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

type adaptivePermit struct {
	a        *Adaptive
	m        *model
	tokens   int
	epoch    uint64
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
