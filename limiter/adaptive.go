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
	// ReasonRateCut: a throttle set or cut the learned tokens-per-window rate.
	ReasonRateCut = "rate cut"
	// ReasonRateGrew: the rate held calls back for a whole window without
	// a throttle, so it grew.
	ReasonRateGrew = "rate grew"
)

// dropHalfLife is how fast Backoff forgets drops: a drop counts half as much
// this long after it happened. Ten seconds spans several Bedrock calls, so a
// model that throttles every few calls keeps a longer suggested wait.
const dropHalfLife = 10 * time.Second

// maxGrowDoublings caps how far the rate's growth per window doubles after
// windows that grew in a row: at most 16 steps a window.
const maxGrowDoublings = 4

// maxRecutDoublings caps how deep repeated cuts within a window go: Cut^4
// (0.81 for the default Cut). Cut^8 found a halved quota a little faster
// in the benchmark but undershot it for two minutes (94.6% goodput against
// 97.0%).
const maxRecutDoublings = 2

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

// Adaptive limits calls per model and learns each model's limit and token
// budget from the outcomes its callers report. See the package documentation
// for the rules. It is safe for concurrent use.
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

	// rate is the learned cap on tokens reserved per window; 0 until the
	// first throttle. log holds the reservations admitted in the last
	// window, oldest first; windowTokens sums those still counted.
	rate         float64
	firstAt      time.Time // first admission
	log          []*reservation
	windowTokens int
	// cuts counts rate cuts; a permit remembers it so a throttle of a call
	// admitted after the last cut can cut again within the window.
	cuts    uint64
	lastCut time.Time
	// growFrom starts the current growth period; held records that the
	// rate held a call back (or made Available 0) during it.
	growFrom time.Time
	held     bool
	// streak counts growths since the last cut; recuts counts cuts since
	// the last once-per-window cut.
	streak, recuts int
	// meanTokens is a moving average of requested reservations: the size
	// Available and Backoff assume for the next call, and the least the
	// rate grows by.
	meanTokens float64
	// wakeAt is when the pending wake-up timer fires (zero if none);
	// stopWake cancels it.
	wakeAt   time.Time
	stopWake func() bool
}

// reservation is one admitted call in a model's rate window.
type reservation struct {
	at     time.Time
	tokens int
	// counted is whether tokens are in windowTokens: from admission until
	// the reservation leaves the window or its call is throttled.
	counted bool
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
	m.noteTokens(tokens)
	w := &waiter{tokens: tokens, ready: make(chan struct{})}
	m.queue = append(m.queue, w)
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
	if w.permit != nil {
		// Admitted while ctx ended: hand the permit back unused. The caller
		// never sees it, so marking it released makes any other release a
		// no-op.
		w.permit.released.Store(true)
		a.free(m, w.permit)
		if r := w.permit.res; r.counted { // never sent: it reserved nothing
			m.windowTokens -= r.tokens
			r.counted = false
		}
	} else {
		m.queue = slices.DeleteFunc(m.queue, func(x *waiter) bool { return x == w })
	}
	// Either way capacity or the head of the queue may have changed.
	a.dispatch(m)
	a.unlock()
	return nil, fmt.Errorf("wait for a %s permit: %w", model, ctx.Err())
}

// dispatch admits waiters of m in FIFO order while they fit, letting calls
// that fit the token budget and rate pass the first one that does not, at
// most MaxBypass times. If the rate holds a waiter back, it sets a timer for
// when enough reservations will have left the window. a.mu must be held.
func (a *Adaptive) dispatch(m *model) {
	now := a.cfg.Now()
	a.advance(m, now)
	var blocked *waiter     // first waiter that does not fit
	var rateBlocked *waiter // first waiter the rate holds back
	for i := 0; i < len(m.queue); {
		if m.inFlight >= m.intLimit() {
			break
		}
		w := m.queue[i]
		if !m.fits(w.tokens) {
			if rateBlocked == nil && !m.fitsRate(w.tokens) {
				rateBlocked = w
			}
			if blocked == nil {
				blocked = w
			}
			if a.cfg.MaxBypass < 0 {
				break
			}
			i++
			continue
		}
		if blocked != nil {
			if blocked.bypassed >= a.cfg.MaxBypass {
				break
			}
			blocked.bypassed++
		}
		m.queue = slices.Delete(m.queue, i, i+1)
		m.inFlight++
		m.tokens += w.tokens
		if m.firstAt.IsZero() {
			m.firstAt = now
		}
		r := &reservation{at: now, tokens: w.tokens, counted: true}
		m.log = append(m.log, r)
		m.windowTokens += w.tokens
		w.permit = &adaptivePermit{a: a, m: m, tokens: w.tokens, epoch: m.epoch, cuts: m.cuts, res: r}
		close(w.ready)
	}
	if rateBlocked != nil {
		m.held = true
		a.wakeAt(m, m.fitsAt(rateBlocked.tokens, a.cfg.Window), now)
	}
}

// advance drops reservations older than the window from m's log and grows
// the rate if a growth period has ended. a.mu must be held.
func (a *Adaptive) advance(m *model, now time.Time) {
	n := 0
	for n < len(m.log) && now.Sub(m.log[n].at) >= a.cfg.Window {
		if r := m.log[n]; r.counted {
			m.windowTokens -= r.tokens
			r.counted = false
		}
		n++
	}
	if n > 0 {
		m.log = slices.Delete(m.log, 0, n)
	}
	if m.rate == 0 || now.Sub(m.growFrom) < a.cfg.Window {
		return
	}
	// A window without a counted throttle (every counted throttle cuts and
	// restarts the period): if the rate held calls back, it may be too
	// low. Growth is at least one average call, an additive term that lets
	// processes sharing a quota converge to equal shares (Chiu–Jain), and
	// doubles with every window that grew since the last cut (up to
	// maxGrowDoublings), so a rate learned far too low (from a concurrency
	// throttle, or while others held the quota) recovers in a few windows
	// while one just cut probes slowly.
	if m.held {
		old := m.state()
		step := max(a.cfg.Grow*m.rate, m.meanTokens, 1)
		m.rate += step * float64(int(1)<<min(m.streak, maxGrowDoublings))
		m.streak++
		a.pending = append(a.pending, a.changed(m, old, ReasonRateGrew))
	}
	m.growFrom, m.held = now, false
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

// intLimit is the number of calls the learned limit allows.
func (m *model) intLimit() int { return int(math.Floor(m.limit + epsilon)) }

// intBudget is the number of tokens the learned budget allows.
func (m *model) intBudget() int { return int(math.Floor(m.budget + epsilon)) }

// intRate is the number of tokens per window the learned rate allows.
func (m *model) intRate() int { return int(math.Floor(m.rate + epsilon)) }

// fits reports whether a call reserving tokens fits m's token budget and
// rate now. A call larger than the whole budget fits when nothing is in
// flight, so it is never starved.
func (m *model) fits(tokens int) bool {
	return (m.inFlight == 0 || m.tokens+tokens <= m.intBudget()) && m.fitsRate(tokens)
}

// fitsRate reports whether a call reserving tokens fits the rate window
// now: always while the rate is unlearned, and when the window is empty, so
// a call larger than the whole rate runs alone rather than never.
func (m *model) fitsRate(tokens int) bool {
	return m.rate == 0 || m.windowTokens == 0 || m.windowTokens+tokens <= m.intRate()
}

// fitsAt is when a call reserving tokens will fit the rate window, as its
// oldest reservations leave it; the zero time if it fits now.
func (m *model) fitsAt(tokens int, window time.Duration) time.Time {
	if m.fitsRate(tokens) {
		return time.Time{}
	}
	left, limit := m.windowTokens, m.intRate()
	for _, r := range m.log {
		if !r.counted {
			continue
		}
		left -= r.tokens
		if left == 0 || left+tokens <= limit {
			return r.at.Add(window)
		}
	}
	return time.Time{} // unreachable: an empty window fits anything
}

// nextTokens is the reservation assumed for m's next call.
func (m *model) nextTokens() int { return max(1, int(math.Ceil(m.meanTokens))) }

// noteTokens folds a requested reservation into m's moving average.
func (m *model) noteTokens(tokens int) {
	if m.meanTokens == 0 {
		m.meanTokens = float64(tokens)
		return
	}
	m.meanTokens += (float64(tokens) - m.meanTokens) / 16
}

// rateFull reports whether the rate would hold m's next call back.
func (m *model) rateFull() bool { return !m.fitsRate(m.nextTokens()) }

func (m *model) state() State {
	return State{
		Model:          m.name,
		Limit:          m.intLimit(),
		InFlight:       m.inFlight,
		Waiting:        len(m.queue),
		TokenBudget:    m.intBudget(),
		TokensInFlight: m.tokens,
		Rate:           m.intRate(),
		TokensInWindow: m.windowTokens,
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
	a.mu.Lock()
	m := p.m
	now := a.cfg.Now()
	a.advance(m, now)
	// What was in use is judged with the reporting call still counted: it
	// was part of the load the outcome answers for.
	countUsed, tokensUsed := a.inUse(m)
	a.free(m, p)
	current := p.epoch == m.epoch
	switch o {
	case Success:
		m.successes++
		// While the rate holds calls back, more concurrency would only
		// queue them: the limit grows only when the rate is not what binds.
		if current && !m.rateFull() {
			if c, ok := a.grow(m, p, countUsed, tokensUsed); ok {
				a.pending = append(a.pending, c)
			}
		}
	case Dropped:
		m.drops++
		a.noteDrop(m)
		// A throttled call reserved nothing (Bedrock and the simulator
		// reserve only for admitted calls), so it leaves the window.
		if p.res.counted {
			m.windowTokens -= p.res.tokens
			p.res.counted = false
		}
		// One rate cut per window: throttles of calls admitted before the
		// last cut are the same overshoot, answered already. A call
		// admitted after it that is throttled shows the cut rate is still
		// too high, so it cuts again.
		windowCut := m.rate == 0 || now.Sub(m.lastCut) >= a.cfg.Window
		if windowCut || p.cuts == m.cuts {
			a.cutRate(m, p, now, windowCut)
		}
		// The limit decreases once per burst (calls admitted before the
		// last decrease are the same congestion event, as TCP's one
		// decrease per window). Once a rate is learned, a quota minute's
		// overshoot is the rate's to answer: calls admitted after a cut are
		// throttled until the quota's minute ends, and cutting the limit for
		// each would collapse it. So with a rate the limit decreases at most
		// once per window, with the rate.
		if current && windowCut {
			if c, ok := a.shrink(m, countUsed, tokensUsed); ok {
				a.pending = append(a.pending, c)
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

// cutRate sets m's rate to Cut × min(rate, tokens admitted in the window and
// not throttled), learning it on the first throttle. The window's tokens
// are what the quota let through, so they are the estimate; the throttled
// call counts as at least one call's worth. a.mu must be held.
//
// A throttle of a call admitted after the last cut within the same window
// cuts deeper: Cut² for the first such recut, Cut⁴ for every later one. The sliding window still holds the previous quota
// minute's calls, so min(rate, window) barely moves when the quota itself
// dropped; without this, halving a quota took a dozen throttles.
func (a *Adaptive) cutRate(m *model, p *adaptivePermit, now time.Time, windowCut bool) {
	old := m.state()
	if windowCut {
		m.recuts = 0
	} else {
		m.recuts = min(m.recuts+1, maxRecutDoublings)
	}
	accepted := float64(max(m.windowTokens, p.tokens))
	if m.rate > 0 {
		accepted = min(m.rate, accepted)
	} else if seen := now.Sub(m.firstAt); seen < a.cfg.Window {
		// Learning from less than a window of history (a concurrency
		// limit throttled first): extrapolate to a whole window, at most
		// tenfold. If the quota minute was what ran out, the next throttle
		// cuts to what the window really holds.
		accepted *= float64(a.cfg.Window) / float64(max(seen, a.cfg.Window/10))
	}
	m.rate = max(float64(a.cfg.MinRate), math.Pow(a.cfg.Cut, float64(int(1)<<m.recuts))*accepted)
	m.cuts++
	m.lastCut, m.growFrom, m.held, m.streak = now, now, false, 0
	a.pending = append(a.pending, a.changed(m, old, ReasonRateCut))
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
//
// If the model's rate window is full, the wait also covers the time until
// enough reservations leave it for the calls already waiting plus one more:
// before that an Acquire would only queue, and a throttled call's job holds
// no worker slot meanwhile.
func (a *Adaptive) Backoff(model string) time.Duration {
	a.mu.Lock()
	defer a.unlock()
	now := a.cfg.Now()
	n := 1.0
	var until time.Duration
	if m, ok := a.models[model]; ok {
		a.advance(m, now)
		n = max(1, m.decayedDrops(now))
		need := m.nextTokens()
		for _, w := range m.queue {
			need += w.tokens
		}
		if at := m.fitsAt(need, a.cfg.Window); !at.IsZero() {
			until = max(at.Sub(now), 0)
		}
	}
	maxD := float64(a.cfg.BackoffMax)
	j := min(maxD, float64(a.cfg.BackoffBase)*n)
	r := a.cfg.Rand()
	d := float64(until) + j/2 + r*j/2
	if d > maxD {
		// Capped: keep jitter below the cap so callers still spread out.
		d = maxD - r*j/2
	}
	return time.Duration(d)
}

// Available is how many more calls the limiters could admit soon, summed over
// the models in Config.Models and every model acquired so far: each model's
// limit minus its calls in flight and its waiters (which take free slots
// first), never below zero; and, once a model's rate is learned, no more
// than the average calls that still fit its rate window. It feeds the
// worker's receive loop, which thus stops taking jobs while a model's
// window is full instead of holding them in Acquire.
func (a *Adaptive) Available() int {
	a.mu.Lock()
	defer a.unlock()
	now := a.cfg.Now()
	n := 0
	for _, m := range a.models {
		a.advance(m, now)
		free := max(0, m.intLimit()-m.inFlight-len(m.queue))
		if m.rate > 0 && free > 0 {
			fit := (m.intRate() - m.windowTokens) / m.nextTokens()
			if m.windowTokens == 0 {
				fit = max(fit, 1)
			}
			if fit -= len(m.queue); fit <= 0 {
				m.held = true
			}
			free = min(free, max(0, fit))
		}
		n += free
	}
	return n
}

// Snapshot returns every known model's state, sorted by model ID.
func (a *Adaptive) Snapshot() []State {
	a.mu.Lock()
	now := a.cfg.Now()
	out := make([]State, 0, len(a.models))
	for _, m := range a.models {
		a.advance(m, now)
		out = append(out, m.state())
	}
	a.unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

type adaptivePermit struct {
	a      *Adaptive
	m      *model
	tokens int
	epoch  uint64
	// cuts is the model's rate-cut count when the call was admitted; res
	// is its reservation in the rate window.
	cuts     uint64
	res      *reservation
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
