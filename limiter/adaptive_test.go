package limiter_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierq/tierq/limiter"
)

// callLimiter is what the pipeline and the worker need from a limiter
// (pipeline.Limiter plus worker.Capacity); both limiters must satisfy it.
type callLimiter interface {
	Acquire(ctx context.Context, model string, tokens int) (limiter.Permit, error)
	Available() int
}

var (
	_ callLimiter = (*limiter.Fixed)(nil)
	_ callLimiter = (*limiter.Adaptive)(nil)
)

// failsafe bounds waits for a goroutine the test expects to act at once, so
// a bug fails the test instead of hanging it. It never paces the test.
const failsafe = 10 * time.Second

// fakeClock is the limiter's clock and timers in tests: time moves only in
// Advance, which runs the timers that come due before it returns.
type fakeClock struct {
	ns     atomic.Int64
	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	at   int64
	f    func()
	done bool
}

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// AfterFunc is Config.AfterFunc on the fake clock.
func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.ns.Load() + int64(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}

// Advance moves the clock by d and runs every timer due by then, earliest
// first, each without the clock's lock (a timer may set another).
func (c *fakeClock) Advance(d time.Duration) {
	now := c.ns.Add(int64(d))
	for {
		c.mu.Lock()
		var due *fakeTimer
		c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t.done })
		for _, t := range c.timers {
			if t.at <= now && (due == nil || t.at < due.at) {
				due = t
			}
		}
		if due != nil {
			due.done = true
		}
		c.mu.Unlock()
		if due == nil {
			return
		}
		due.f()
	}
}

type acquired struct {
	p   limiter.Permit
	err error
}

// harness drives one Adaptive, learning from its wait hook when an Acquire
// blocks.
type harness struct {
	t     *testing.T
	a     *limiter.Adaptive
	clock *fakeClock
	waits chan string
}

func newHarness(t *testing.T, cfg limiter.Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock(), waits: make(chan string, 64)}
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = h.clock.AfterFunc
	}
	a, err := limiter.NewAdaptive(cfg)
	if err != nil {
		t.Fatalf("NewAdaptive: %v", err)
	}
	limiter.SetWaitHook(a, func(model string) { h.waits <- model })
	h.a = a
	return h
}

func (h *harness) start(ctx context.Context, model string, tokens int) <-chan acquired {
	r := make(chan acquired, 1)
	go func() {
		p, err := h.a.Acquire(ctx, model, tokens)
		r <- acquired{p, err}
	}()
	return r
}

// acquire takes a permit that must be granted at once.
func (h *harness) acquire(model string, tokens int) limiter.Permit {
	h.t.Helper()
	r := h.start(h.t.Context(), model, tokens)
	select {
	case got := <-r:
		if got.err != nil {
			h.t.Fatalf("acquire %s (%d tokens): %v", model, tokens, got.err)
		}
		return got.p
	case <-h.waits:
		h.t.Fatalf("acquire %s (%d tokens) blocked, want an immediate permit; state %+v", model, tokens, h.state(model))
	}
	return nil
}

// wait starts an Acquire that must block and returns where its result goes.
func (h *harness) wait(ctx context.Context, model string, tokens int) <-chan acquired {
	h.t.Helper()
	r := h.start(ctx, model, tokens)
	select {
	case <-h.waits:
		return r
	case got := <-r:
		h.t.Fatalf("acquire %s (%d tokens) returned (%v, %v), want it to wait", model, tokens, got.p, got.err)
	}
	return nil
}

// granted receives the permit of a waiter that must have been admitted.
func (h *harness) granted(r <-chan acquired, what string) limiter.Permit {
	h.t.Helper()
	select {
	case got := <-r:
		if got.err != nil {
			h.t.Fatalf("%s: %v, want a permit", what, got.err)
		}
		return got.p
	case <-time.After(failsafe):
		h.t.Fatalf("%s was never admitted", what)
	}
	return nil
}

func (h *harness) lookup(model string) (limiter.State, bool) {
	for _, s := range h.a.Snapshot() {
		if s.Model == model {
			return s, true
		}
	}
	return limiter.State{}, false
}

func (h *harness) state(model string) limiter.State {
	h.t.Helper()
	s, ok := h.lookup(model)
	if !ok {
		h.t.Fatalf("no state for model %q", model)
	}
	return s
}

// fill acquires permits of tokens each until the limit is reached.
func (h *harness) fill(model string, tokens int) []limiter.Permit {
	h.t.Helper()
	var ps []limiter.Permit
	for {
		s, ok := h.lookup(model)
		if ok && s.InFlight >= s.Limit {
			return ps
		}
		ps = append(ps, h.acquire(model, tokens))
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := limiter.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name string
		edit func(*limiter.Config)
		want []string
	}{
		{"limits out of order", func(c *limiter.Config) { c.MinLimit, c.MaxLimit = 8, 4 }, []string{"MaxLimit (4) must be at least MinLimit (8)", "InitialLimit must be in"}},
		{"negative min", func(c *limiter.Config) { c.MinLimit = -1 }, []string{"MinLimit must be at least 1"}},
		{"decrease too small", func(c *limiter.Config) { c.Decrease = 0.3 }, []string{"Decrease must be in 0.5..0.9"}},
		{"decrease too large", func(c *limiter.Config) { c.Decrease = 0.95 }, []string{"Decrease must be in"}},
		{"bad increase and used", func(c *limiter.Config) { c.Increase, c.UsedFraction = -1, 1.5 }, []string{"Increase must be", "UsedFraction must be"}},
		{"tokens", func(c *limiter.Config) { c.InitialTokens, c.MaxTokens, c.TokenIncrease = 5, 4, -2 }, []string{"MaxTokens (4) must be at least MinTokens", "InitialTokens must be in", "TokenIncrease must be"}},
		{"backoff", func(c *limiter.Config) { c.BackoffBase, c.BackoffMax = time.Second, time.Millisecond }, []string{"BackoffMax"}},
		{"empty model and no clock", func(c *limiter.Config) { c.Models, c.Now, c.AfterFunc = []string{"a", ""}, nil, nil }, []string{"Models[1] is empty", "Now is required", "AfterFunc is required"}},
		{"rate window", func(c *limiter.Config) { c.Window, c.Cut, c.Grow, c.MinRate = -time.Second, 1, 2, -1 }, []string{"Window must be positive", "Cut must be in", "Grow must be in", "MinRate must be at least 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := limiter.DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to mention %q", err, w)
				}
			}
			if _, err := limiter.NewAdaptive(c); err == nil {
				t.Error("NewAdaptive accepted the config")
			}
		})
	}
}

func TestAdaptiveZeroConfigUsesDefaults(t *testing.T) {
	t.Parallel()
	a, err := limiter.NewAdaptive(limiter.Config{Models: []string{"m"}})
	if err != nil {
		t.Fatal(err)
	}
	s := a.Snapshot()[0]
	if s.Limit != limiter.DefaultInitialLimit || s.TokenBudget != limiter.DefaultInitialTokens {
		t.Errorf("state %+v, want limit %d and budget %d", s, limiter.DefaultInitialLimit, limiter.DefaultInitialTokens)
	}
}

func TestAdaptiveBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{})
	if _, err := h.a.Acquire(t.Context(), "", 1); err == nil {
		t.Error("Acquire with no model: nil error")
	}
	if _, err := h.a.Acquire(t.Context(), "m", -1); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Acquire with negative tokens: %v, want an error saying so", err)
	}
	if got := len(h.a.Snapshot()); got != 0 {
		t.Errorf("bad calls created %d model states, want 0", got)
	}
}

func TestAdaptiveIncreaseOnlyWhenUsed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		limit    int
		inFlight int // calls in flight, counting the one reporting success
		grows    bool
	}{
		{"idle single call", 4, 1, false},
		{"half used", 10, 5, false},
		{"just below the used fraction", 10, 7, false},
		{"at the used fraction", 10, 8, true},
		{"at the limit", 4, 4, true},
		{"limit of one", 1, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, limiter.Config{InitialLimit: tt.limit, InitialTokens: 1_000_000, MaxTokens: 1_000_000})
			// Keep tt.inFlight calls in flight and report 200 successes: an
			// unused limit must not move at all; a used one must grow.
			held := make([]limiter.Permit, tt.inFlight)
			for i := range held {
				held[i] = h.acquire("m", 10)
			}
			for i := range 200 {
				held[i%len(held)].Release(limiter.Success)
				if s := h.state("m"); !tt.grows && s.Limit != tt.limit {
					t.Fatalf("after %d successes with %d of %d in flight: limit %d, want it unchanged", i+1, tt.inFlight, tt.limit, s.Limit)
				}
				held[i%len(held)] = h.acquire("m", 10)
			}
			if got := h.state("m").Limit; tt.grows && got <= tt.limit {
				t.Errorf("limit %d after 200 successes at %d of %d in flight, want it grown", got, tt.inFlight, tt.limit)
			}
		})
	}
}

func TestAdaptiveAdditiveIncreaseIsOnePerWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 8})
	held := h.fill("m", 10)
	successes := 0
	for h.state("m").Limit == 8 {
		p := held[0]
		held = held[1:]
		p.Release(limiter.Success)
		successes++
		held = append(held, h.acquire("m", 10))
	}
	// 8 + 1/8 + 1/8.125 + ... crosses 9 on the 9th success: about one
	// limit's worth of successes per extra call, not one call per success.
	if successes < 8 || successes > 9 {
		t.Errorf("limit went 8 -> 9 after %d successes, want 8 or 9 (one window)", successes)
	}
}

func TestAdaptiveDecreaseOncePerBurst(t *testing.T) {
	t.Parallel()
	var reasons []string
	var mu sync.Mutex
	h := newHarness(t, limiter.Config{
		InitialLimit: 10,
		OnChange: func(_ string, _, _ limiter.State, reason string) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
		},
	})
	burst := h.fill("m", 1000)
	for _, p := range burst {
		p.Release(limiter.Dropped)
	}
	s := h.state("m")
	if s.Limit != 7 || s.Drops != 10 {
		t.Fatalf("after a burst of 10 throttles admitted at limit 10: limit %d drops %d, want limit 7 (one decrease) and 10 drops", s.Limit, s.Drops)
	}
	// The first throttle also learned the rate: 0.95 × the 9,000 tokens
	// admitted and not throttled, extrapolated from the tenth of a window
	// (the least it assumes) the model has been seen to a whole one.
	if s := h.state("m"); s.Rate != 85_500 {
		t.Fatalf("rate %d after the first throttle, want 85500", s.Rate)
	}
	// A call admitted after the cut that is throttled is new evidence that
	// the rate is too high: the rate is cut again, within the window, and
	// deeper (Cut²). The limit is not: the quota's minute is spent, and
	// cutting it for every such call would collapse it.
	again := h.fill("m", 1000)
	again[0].Release(limiter.Dropped)
	if s := h.state("m"); s.Limit != 7 || s.Rate != 5415 { // 0.95² × min(85500, 6000 still counted)
		t.Errorf("after a throttle admitted after the cut: limit %d rate %d, want 7 and 5415", s.Limit, s.Rate)
	}
	for _, p := range again[1:] {
		p.Release(limiter.Dropped)
	}
	if s := h.state("m"); s.Limit != 7 || s.Rate != 5415 {
		t.Errorf("after the rest of the second burst: limit %d rate %d, want still 7 and 5415", s.Limit, s.Rate)
	}
	// A window later a throttle is a new minute's overshoot: both decrease.
	h.clock.Advance(time.Minute)
	third := h.fill("m", 500)
	third[0].Release(limiter.Dropped)
	if s := h.state("m"); s.Limit != 4 || s.Rate != 2850 { // 7 × 0.7; 0.95 × the other six calls' 3,000
		t.Errorf("a window later: limit %d rate %d, want 4 and 2850", s.Limit, s.Rate)
	}
	for _, p := range third[1:] {
		p.Release(limiter.Success)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{limiter.ReasonRateCut, limiter.ReasonDropped, limiter.ReasonRateCut, limiter.ReasonRateCut, limiter.ReasonDropped}
	if !slices.Equal(reasons, want) {
		t.Errorf("OnChange reasons %q, want %q", reasons, want)
	}
}

func TestAdaptiveStaleSuccessDoesNotUndoDecrease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 10})
	held := h.fill("m", 10)
	held[0].Release(limiter.Dropped)
	// Nine calls admitted at limit 10 are still in flight at limit 7, which
	// looks "in use", but their successes answer for the old limit.
	for _, p := range held[1:] {
		p.Release(limiter.Success)
	}
	if s := h.state("m"); s.Limit != 7 || s.Successes != 9 {
		t.Errorf("state %+v, want limit 7 and 9 successes counted", s)
	}
}

func TestAdaptiveBounds(t *testing.T) {
	t.Parallel()
	// A MinRate no window reaches keeps pacing out of the way: this is
	// about the concurrency limit and the budget.
	h := newHarness(t, limiter.Config{Models: []string{"m"}, InitialLimit: 3, MinLimit: 2, MaxLimit: 5, InitialTokens: 20_000, MinTokens: 5_000, MaxTokens: 40_000, MinRate: 1 << 40})
	// Each round fills both the limit and the budget, so both are in use.
	// Rounds are a window apart: with a rate learned, the limit decreases
	// at most once per window.
	round := func(o limiter.Outcome) {
		h.clock.Advance(time.Minute)
		s := h.state("m")
		for _, p := range h.fill("m", s.TokenBudget/s.Limit) {
			p.Release(o)
		}
	}
	for range 20 {
		round(limiter.Dropped)
	}
	if s := h.state("m"); s.Limit != 2 || s.TokenBudget != 5_000 {
		t.Errorf("after repeated throttles: limit %d budget %d, want the floors 2 and 5000", s.Limit, s.TokenBudget)
	}
	for range 200 {
		round(limiter.Success)
	}
	if s := h.state("m"); s.Limit != 5 || s.TokenBudget != 40_000 {
		t.Errorf("after many successes in use: limit %d budget %d, want the ceilings 5 and 40000", s.Limit, s.TokenBudget)
	}
}

func TestAdaptiveIgnoredChangesNothing(t *testing.T) {
	t.Parallel()
	for _, o := range []limiter.Outcome{limiter.Ignored, limiter.Outcome(42)} {
		t.Run(o.String(), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, limiter.Config{InitialLimit: 4, Models: []string{"m"}})
			before := h.state("m")
			held := h.fill("m", 25_000) // the limit and the budget both in use
			h.clock.Advance(time.Minute)
			for _, p := range held {
				p.Release(o)
			}
			if after := h.state("m"); after != before {
				t.Errorf("state after %v releases\n got %+v\nwant %+v (unchanged)", o, after, before)
			}
		})
	}
}

func TestAdaptiveReleaseIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 4})
	p := h.acquire("m", 500)
	q := h.acquire("m", 700)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { p.Release(limiter.Success) })
	}
	wg.Wait()
	p.Release(limiter.Dropped)
	s := h.state("m")
	if s.InFlight != 1 || s.TokensInFlight != 700 || s.Successes != 1 || s.Drops != 0 {
		t.Errorf("after releasing one permit 9 times: %+v, want 1 in flight holding 700 tokens, 1 success, 0 drops", s)
	}
	q.Release(limiter.Ignored)
	if s := h.state("m"); s.InFlight != 0 || s.TokensInFlight != 0 {
		t.Errorf("after releasing both: %+v, want nothing in flight", s)
	}
}

func TestAdaptiveTokenAdmission(t *testing.T) {
	t.Parallel()
	t.Run("many small calls run wide", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, limiter.Config{InitialLimit: 20, InitialTokens: 100_000})
		for range 20 {
			h.acquire("m", 4_000)
		}
		if s := h.state("m"); s.InFlight != 20 || s.TokensInFlight != 80_000 {
			t.Errorf("state %+v, want 20 small calls in flight", s)
		}
	})
	t.Run("the budget caps calls before the limit", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, limiter.Config{InitialLimit: 20, InitialTokens: 100_000})
		for range 3 {
			h.acquire("m", 30_000)
		}
		h.wait(t.Context(), "m", 30_000)
		if s := h.state("m"); s.InFlight != 3 || s.Waiting != 1 {
			t.Errorf("state %+v, want 3 in flight and 1 waiting", s)
		}
	})
	t.Run("a call larger than the budget runs alone", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, limiter.Config{InitialLimit: 8, InitialTokens: 10_000})
		small := h.acquire("m", 1_000)
		huge := h.wait(t.Context(), "m", 50_000)
		small.Release(limiter.Success)
		hp := h.granted(huge, "the huge call once nothing else was in flight")
		after := h.wait(t.Context(), "m", 1_000)
		if s := h.state("m"); s.InFlight != 1 || s.TokensInFlight != 50_000 {
			t.Errorf("while the huge call runs: %+v, want it alone", s)
		}
		hp.Release(limiter.Success)
		h.granted(after, "the small call after the huge one")
	})
	t.Run("budget learned down on drops", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, limiter.Config{InitialLimit: 8, InitialTokens: 10_000})
		a, b := h.acquire("m", 4_000), h.acquire("m", 4_000) // 8,000 of 10,000: in use
		a.Release(limiter.Dropped)
		b.Release(limiter.Dropped)
		if s := h.state("m"); s.TokenBudget != 7_000 || s.Limit != 8 {
			t.Errorf("after a throttle with the budget in use and 2 of 8 calls: %+v, want budget 7000 and limit unchanged", s)
		}
	})
	t.Run("budget learned up on use", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, limiter.Config{InitialLimit: 8, InitialTokens: 10_000, TokenIncrease: 4_000})
		held := []limiter.Permit{h.acquire("m", 4_000), h.acquire("m", 4_000)}
		var waiting <-chan acquired = h.wait(t.Context(), "m", 4_000)
		for i := 0; h.state("m").InFlight < 3; i++ {
			if i > 100 {
				t.Fatalf("budget never grew to fit a third call: %+v", h.state("m"))
			}
			held[0].Release(limiter.Success)
			held[0] = h.granted(waiting, "the next 4,000-token call")
			held[0], held[1] = held[1], held[0]
			waiting = h.start(t.Context(), "m", 4_000)
			select {
			case <-h.waits:
			case got := <-waiting:
				held = append(held, got.p) // the budget now fits three
			}
		}
		if s := h.state("m"); s.TokenBudget < 12_000 || s.Limit != 8 {
			t.Errorf("state %+v, want a budget of at least 12000 and the unused limit unchanged", s)
		}
	})
}

func TestAdaptiveFIFO(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 1})
	ctx := t.Context()
	held := h.acquire("m", 10)
	a := h.wait(ctx, "m", 10)
	b := h.wait(ctx, "m", 10)
	c := h.wait(ctx, "m", 10)
	for _, next := range []struct {
		r    <-chan acquired
		name string
	}{{a, "first waiter"}, {b, "second waiter"}, {c, "third waiter"}} {
		held.Release(limiter.Ignored)
		held = h.granted(next.r, next.name)
		if s := h.state("m"); s.InFlight != 1 {
			t.Fatalf("%d in flight at limit 1", s.InFlight)
		}
	}
}

func TestAdaptiveBypassOfCallThatDoesNotFit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		maxBypass int
		passed    int // small calls admitted ahead of the big one
	}{
		{"bounded bypass", 2, 2},
		{"strict FIFO", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, limiter.Config{InitialLimit: 16, InitialTokens: 10_000, MaxBypass: tt.maxBypass})
			ctx := t.Context()
			first := h.acquire("m", 6_000)
			big := h.wait(ctx, "m", 8_000) // 6,000 + 8,000 > 10,000
			var passed []limiter.Permit
			for range tt.passed {
				passed = append(passed, h.acquire("m", 1_000))
			}
			late := h.wait(ctx, "m", 1_000) // fits, but may not pass again
			if s := h.state("m"); s.InFlight != 1+tt.passed || s.Waiting != 2 {
				t.Fatalf("state %+v, want %d in flight and the big and the late call waiting", s, 1+tt.passed)
			}
			first.Release(limiter.Success)
			for _, p := range passed {
				p.Release(limiter.Success)
			}
			bp := h.granted(big, "the big call")
			lp := h.granted(late, "the late small call, behind the big one")
			if s := h.state("m"); s.InFlight != 2 || s.TokensInFlight != 9_000 {
				t.Errorf("state %+v, want the big and the late call in flight", s)
			}
			bp.Release(limiter.Success)
			lp.Release(limiter.Success)
		})
	}
}

func TestAdaptiveCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 1})
	held := h.acquire("m", 100)
	ctx, cancel := context.WithCancel(t.Context())
	r := h.wait(ctx, "m", 100)
	behind := h.wait(t.Context(), "m", 100)
	cancel()
	got := <-r
	if !errors.Is(got.err, context.Canceled) || !strings.Contains(got.err.Error(), "m permit") {
		t.Fatalf("cancelled Acquire = (%v, %v), want a wrapped context.Canceled naming the model", got.p, got.err)
	}
	if s := h.state("m"); s.Waiting != 1 || s.InFlight != 1 {
		t.Fatalf("after cancelling one of two waiters: %+v, want 1 waiting and 1 in flight", s)
	}
	held.Release(limiter.Success)
	p := h.granted(behind, "the waiter behind the cancelled one")
	p.Release(limiter.Success)
	if s := h.state("m"); s.Waiting != 0 || s.InFlight != 0 || s.TokensInFlight != 0 {
		t.Errorf("at the end: %+v, want nothing waiting or in flight", s)
	}

	done, stop := context.WithCancel(t.Context())
	stop()
	if _, err := h.a.Acquire(done, "m", 100); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with an ended context and free capacity: %v, want context.Canceled", err)
	}
	if s := h.state("m"); s.InFlight != 0 {
		t.Errorf("an ended context took a permit: %+v", s)
	}
}

// TestAdaptiveCancelRacesAdmission cancels waiters at the moment they are
// admitted, so both orders happen; whichever wins, nothing leaks and nothing
// is freed twice.
func TestAdaptiveCancelRacesAdmission(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 1})
	got := 0
	for range 200 {
		held := h.acquire("m", 100)
		ctx, cancel := context.WithCancel(t.Context())
		r := h.wait(ctx, "m", 100)
		go cancel()
		held.Release(limiter.Ignored)
		res := <-r
		if res.err == nil {
			got++
			res.p.Release(limiter.Ignored)
			res.p.Release(limiter.Ignored)
		}
		cancel()
		if s := h.state("m"); s.InFlight != 0 || s.Waiting != 0 || s.TokensInFlight != 0 {
			t.Fatalf("after a cancel racing an admission: %+v, want nothing in flight or waiting", s)
		}
	}
	t.Logf("%d of 200 racing waiters got their permit", got)
}

func TestAdaptiveAvailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 4, Models: []string{"a", "b"}})
	if got := h.a.Available(); got != 8 {
		t.Fatalf("Available before any call = %d, want 8 (two configured models at 4)", got)
	}
	held := []limiter.Permit{h.acquire("a", 1), h.acquire("a", 1), h.acquire("a", 1)}
	if got := h.a.Available(); got != 5 {
		t.Errorf("Available with 3 of a's 4 in flight = %d, want 5", got)
	}
	h.acquire("c", 1) // an unconfigured model joins on first use
	if got := h.a.Available(); got != 8 {
		t.Errorf("Available after the first call to c = %d, want 5 + 3", got)
	}
	held = append(held, h.acquire("a", 1))
	h.wait(t.Context(), "a", 1)
	for _, p := range held[:2] {
		p.Release(limiter.Dropped) // a: 4 * 0.7 -> 2, with 2 in flight and 1 waiting
	}
	if got := h.a.Available(); got != 4+3 {
		t.Errorf("Available with a over its cut limit = %d, want 7 (a counts 0, not negative)", got)
	}
}

func TestAdaptiveSnapshotAndOnChange(t *testing.T) {
	t.Parallel()
	type call struct {
		model    string
		old, new limiter.State
		reason   string
		models   int
	}
	var calls []call
	var h *harness
	h = newHarness(t, limiter.Config{
		InitialLimit: 2,
		Models:       []string{"z", "a"},
		OnChange: func(model string, old, new limiter.State, reason string) {
			// Snapshot takes the lock: this would deadlock if OnChange were
			// called with it held.
			calls = append(calls, call{model, old, new, reason, len(h.a.Snapshot())})
		},
	})
	snap := h.a.Snapshot()
	if len(snap) != 2 || snap[0].Model != "a" || snap[1].Model != "z" {
		t.Fatalf("Snapshot models %+v, want a and z in order", snap)
	}
	p1, p2 := h.acquire("a", 40_000), h.acquire("a", 40_000) // both limits in use
	h.clock.Advance(time.Second)
	dropAt := h.clock.Now()
	p1.Release(limiter.Dropped)
	// The throttled call reserved nothing: the window keeps p2's 40,000,
	// and the learned rate is 0.95 of it, extrapolated from a second of
	// history (at least a tenth of the window) to a whole window.
	want := limiter.State{Model: "a", Limit: 1, InFlight: 1, TokenBudget: 70_000, TokensInFlight: 40_000,
		Rate: 380_000, TokensInWindow: 40_000, Drops: 1, LastChange: dropAt}
	if got := h.state("a"); got != want {
		t.Errorf("state after a drop\n got %+v\nwant %+v", got, want)
	}
	p2.Release(limiter.Success) // admitted before the drop: no growth
	if len(calls) != 2 {
		t.Fatalf("OnChange called %d times, want twice (rate cut, dropped): %+v", len(calls), calls)
	}
	if c := calls[0]; c.model != "a" || c.reason != limiter.ReasonRateCut || c.old.Rate != 0 || c.new.Rate != 380_000 ||
		c.new.Limit != 2 || c.models != 2 || !c.new.LastChange.Equal(dropAt) {
		t.Errorf("first OnChange call %+v, want a's rate learned (0 to 380000) at %v", c, dropAt)
	}
	c := calls[1]
	if c.model != "a" || c.reason != limiter.ReasonDropped || c.old.Limit != 2 || c.new.Limit != 1 ||
		c.old.TokenBudget != 100_000 || c.new.TokenBudget != 70_000 || c.models != 2 || !c.new.LastChange.Equal(dropAt) {
		t.Errorf("second OnChange call %+v, want a's drop from limit 2/100000 to 1/70000 at %v", c, dropAt)
	}
	// A window later the window is empty and the rate no longer binds.
	h.clock.Advance(time.Minute)
	if s := h.state("a"); s.TokensInWindow != 0 || s.Rate != 380_000 {
		t.Errorf("a window later: %+v, want an empty window and the rate kept", s)
	}
	// Growth is reported once the limit gains a whole call, not per success.
	for len(calls) == 2 {
		h.acquire("a", 1).Release(limiter.Success)
	}
	if c := calls[2]; c.reason != limiter.ReasonInUse || c.old.Limit != 1 || c.new.Limit != 2 {
		t.Errorf("third OnChange call %+v, want growth from 1 to 2", c)
	}
	if s := h.state("a"); s.Successes != 2 || s.Drops != 1 {
		t.Errorf("counters %+v, want 2 successes and 1 drop", s)
	}
}

func TestAdaptiveBackoff(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 }
	h := newHarness(t, limiter.Config{InitialLimit: 8, BackoffBase: 100 * time.Millisecond, BackoffMax: 2 * time.Second, Rand: half})
	// Equal jitter with Rand 0.5: the suggestion is 3/4 of the base delay.
	if got, want := h.a.Backoff("unseen"), 75*time.Millisecond; got != want {
		t.Errorf("Backoff before any drop = %v, want %v", got, want)
	}
	for _, p := range h.fill("m", 1) {
		p.Release(limiter.Dropped)
	}
	if got, want := h.a.Backoff("m"), 8*75*time.Millisecond; got != want {
		t.Errorf("Backoff right after 8 drops = %v, want %v", got, want)
	}
	h.clock.Advance(10 * time.Second) // one half-life
	if got, want := h.a.Backoff("m"), 4*75*time.Millisecond; got != want {
		t.Errorf("Backoff 10s after 8 drops = %v, want %v", got, want)
	}
	for range 20 {
		for _, p := range h.fill("m", 1) {
			p.Release(limiter.Dropped)
		}
	}
	if got, want := h.a.Backoff("m"), 1500*time.Millisecond; got != want {
		t.Errorf("Backoff after many drops = %v, want the cap's 3/4, %v", got, want)
	}
	h.clock.Advance(10 * time.Minute)
	if got, want := h.a.Backoff("m"), 75*time.Millisecond; got != want {
		t.Errorf("Backoff long after the drops = %v, want %v", got, want)
	}
}

// learnRate gives model a learned rate in h: a first call a window ago (so
// nothing is extrapolated), then n calls of tokens each, the first of them
// throttled. The rate is then 0.95 × (n-1) × tokens and the window holds
// the other calls, whose permits it returns, still in flight.
func (h *harness) learnRate(model string, n, tokens int) []limiter.Permit {
	h.t.Helper()
	h.acquire(model, tokens).Release(limiter.Success)
	h.clock.Advance(time.Minute)
	ps := make([]limiter.Permit, n)
	for i := range ps {
		ps[i] = h.acquire(model, tokens)
	}
	ps[0].Release(limiter.Dropped)
	if s := h.state(model); s.Rate != int(0.95*float64((n-1)*tokens)) || s.TokensInWindow != (n-1)*tokens {
		h.t.Fatalf("after the first throttle: %+v, want rate 0.95 × %d and the window holding it", s, (n-1)*tokens)
	}
	return ps[1:]
}

// waiting is how many Acquires are blocked on model, from the limiter's
// state: after Advance returns, its timers have admitted whom they could,
// while a granted call's result channel may lag.
func (h *harness) waiting(model string) int {
	h.t.Helper()
	return h.state(model).Waiting
}

func TestAdaptiveRateUnlearnedDoesNotPace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 8})
	for range 8 {
		h.acquire("m", 50_000).Release(limiter.Success)
	}
	if s := h.state("m"); s.Rate != 0 || s.TokensInWindow != 400_000 {
		t.Errorf("state %+v, want no rate and 400000 tokens in the window", s)
	}
}

func TestAdaptivePacingHoldsCallsUntilTheWindowFrees(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 10, Models: []string{"m"}})
	held := h.learnRate("m", 5, 1_000) // rate 3800, window 4000 at T
	// The limit has room, the rate does not: the call waits, and Available
	// stops the receive loop.
	r := h.wait(t.Context(), "m", 1_000)
	if got := h.a.Available(); got != 0 {
		t.Errorf("Available while the rate holds a call = %d, want 0", got)
	}
	// Finishing calls frees concurrency, not the window: Bedrock counted
	// their reservations for the minute.
	for _, p := range held {
		p.Release(limiter.Success)
	}
	h.clock.Advance(time.Minute - time.Second)
	if got := h.waiting("m"); got != 1 {
		t.Fatalf("%d waiting a second before the window frees, want 1", got)
	}
	h.clock.Advance(time.Second) // T+60s: the four reservations leave
	a := h.granted(r, "call held by the rate")
	// The rate held a call back for a window without a throttle: it grew
	// by one average call, to 4800.
	if s := h.state("m"); s.Rate != 4_800 || s.TokensInWindow != 1_000 {
		t.Fatalf("state %+v, want rate 4800 and the admitted call in the window", s)
	}
	// A second later three more fit (4000); the next (5000) waits until the
	// call admitted at T+60s leaves at T+120s.
	h.clock.Advance(time.Second)
	ps := []limiter.Permit{a, h.acquire("m", 1_000), h.acquire("m", 1_000), h.acquire("m", 1_000)}
	r = h.wait(t.Context(), "m", 1_000)
	for _, p := range ps {
		p.Release(limiter.Success)
	}
	h.clock.Advance(time.Minute - time.Second - time.Nanosecond)
	if got := h.waiting("m"); got != 1 {
		t.Fatalf("%d waiting just before the oldest reservation leaves, want 1", got)
	}
	h.clock.Advance(time.Nanosecond)
	h.granted(r, "call held until the oldest reservation left").Release(limiter.Success)
	// A second window in a row that held a call back: growth doubles.
	if s := h.state("m"); s.TokensInWindow != 4_000 || s.Rate != 6_800 {
		t.Errorf("state %+v, want 4000 tokens in the window at rate 6800", s)
	}
}

func TestAdaptiveAvailableCountsWhatFitsTheRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 10, Models: []string{"m"}})
	for _, p := range h.learnRate("m", 5, 1_000) { // rate 3800
		p.Release(limiter.Success)
	}
	if got := h.a.Available(); got != 0 {
		t.Errorf("Available with 4000 of a 3800 rate in the window = %d, want 0", got)
	}
	// Available's 0 held the receive loop back: that counts as the rate
	// holding calls back, so a window later the rate has grown to 4800.
	h.clock.Advance(time.Minute)
	if got := h.a.Available(); got != 4 {
		t.Errorf("Available with an empty window = %d, want 4 calls of about 1000 under 4800", got)
	}
}

func TestAdaptiveHugeCallRunsAloneInTheWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 10})
	for _, p := range h.learnRate("m", 5, 1_000) { // rate 3800
		p.Release(limiter.Success)
	}
	// Larger than the whole rate: it waits for the window to empty, then
	// runs rather than never.
	r := h.wait(t.Context(), "m", 50_000)
	h.clock.Advance(time.Minute)
	huge := h.granted(r, "call larger than the rate")
	r = h.wait(t.Context(), "m", 1)
	huge.Release(limiter.Success)
	h.clock.Advance(time.Minute)
	h.granted(r, "call after the huge one left the window").Release(limiter.Success)
}

func TestAdaptiveRateOneCutPerWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 10})
	burst := h.learnRate("m", 10, 1_000) // rate 8550
	// The rest of the burst was admitted before the cut: the same
	// overshoot, no further cut.
	for _, p := range burst[:4] {
		p.Release(limiter.Dropped)
	}
	if s := h.state("m"); s.Rate != 8_550 || s.TokensInWindow != 5_000 {
		t.Errorf("after throttles admitted before the cut: %+v, want rate 8550 and their reservations gone", s)
	}
	// A window later, even a call admitted before the cut is a new minute's
	// overshoot.
	h.clock.Advance(time.Minute)
	burst[4].Release(limiter.Dropped)
	if s := h.state("m"); s.Rate != limiter.DefaultMinRate {
		t.Errorf("a window later: rate %d, want the floor %d (0.95 × an empty window)", s.Rate, limiter.DefaultMinRate)
	}
}

func TestAdaptiveRateGrowsOnlyWhenItHeldCallsBack(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var grew []limiter.State
	h := newHarness(t, limiter.Config{InitialLimit: 10, OnChange: func(_ string, _, new limiter.State, reason string) {
		if reason == limiter.ReasonRateGrew {
			mu.Lock()
			grew = append(grew, new)
			mu.Unlock()
		}
	}})
	for _, p := range h.learnRate("m", 5, 1_000) { // rate 3800
		p.Release(limiter.Success)
	}
	rate := func() int { return h.state("m").Rate }
	// A window in which nothing was held back: no growth.
	h.clock.Advance(time.Minute)
	if got := rate(); got != 3_800 {
		t.Fatalf("rate %d after a window that held nothing back, want 3800", got)
	}
	// A window in which the rate held a call back and nothing was
	// throttled: growth by the larger of 1% and one average call (1000),
	// doubling with each window in a row that grows.
	ps := []limiter.Permit{h.acquire("m", 1_000), h.acquire("m", 1_000), h.acquire("m", 1_000)}
	r := h.wait(t.Context(), "m", 1_000)
	h.clock.Advance(time.Minute) // the window frees, admits the waiter, and grows
	ps = append(ps, h.granted(r, "held call"))
	if got := rate(); got != 4_800 {
		t.Errorf("rate %d after a window that held a call back, want 4800", got)
	}
	for _, p := range ps {
		p.Release(limiter.Success)
	}
	// A throttle of a call admitted after the cut cuts again (0.95 × the
	// 1000 left in the window, up to the floor) and restarts the period,
	// so no growth follows at the window's end.
	h.acquire("m", 1_000).Release(limiter.Dropped)
	cut := rate()
	if cut >= 4_800 {
		t.Fatalf("rate %d after a throttle admitted after the cut, want below 4800", cut)
	}
	h.clock.Advance(time.Minute)
	if got := rate(); got != cut {
		t.Errorf("rate %d a window after a cut with nothing held back, want %d", got, cut)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(grew) != 1 || grew[0].Rate != 4_800 {
		t.Errorf("OnChange %q calls %+v, want one, to 4800", limiter.ReasonRateGrew, grew)
	}
}

func TestAdaptiveBackoffWaitsForTheWindow(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 }
	h := newHarness(t, limiter.Config{InitialLimit: 10, BackoffBase: 100 * time.Millisecond, BackoffMax: 2 * time.Minute, Rand: half})
	h.learnRate("m", 5, 1_000) // 4000 in a 3800 window at T
	h.clock.Advance(15 * time.Second)
	// The next call (about 1000) fits once two of the reservations leave, at
	// T+60s: 45s from now, plus the drop's jittered 75ms.
	if got, want := h.a.Backoff("m"), 45*time.Second+75*time.Millisecond; got != want {
		t.Errorf("Backoff with a full window = %v, want %v", got, want)
	}
	h.clock.Advance(45 * time.Second)
	if got, want := h.a.Backoff("m"), 75*time.Millisecond; got > want {
		t.Errorf("Backoff once the window frees = %v, want at most %v", got, want)
	}
}

func TestAdaptiveCancelledWaiterLeavesNoReservation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limiter.Config{InitialLimit: 10})
	for _, p := range h.learnRate("m", 5, 1_000) {
		p.Release(limiter.Success)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := h.wait(ctx, "m", 1_000)
	cancel()
	if got := <-r; got.err == nil {
		t.Fatalf("cancelled Acquire returned a permit")
	}
	h.clock.Advance(time.Minute)
	if s := h.state("m"); s.TokensInWindow != 0 || s.Waiting != 0 {
		t.Errorf("state %+v, want an empty window and no waiter", s)
	}
}

func TestAdaptiveQueriesLeaveChangesToOperations(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reasons []string
	h := newHarness(t, limiter.Config{InitialLimit: 10, Models: []string{"m"}, OnChange: func(_ string, _, _ limiter.State, reason string) {
		mu.Lock()
		reasons = append(reasons, reason)
		mu.Unlock()
	}})
	reported := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(reasons)
	}
	for _, p := range h.learnRate("m", 5, 1_000) { // rate 3800, 4000 in the window
		p.Release(limiter.Success)
	}
	if got := h.a.Available(); got != 0 {
		t.Fatalf("Available with the window full = %d, want 0", got)
	}
	cut := h.state("m").LastChange
	before := reported()
	// The window that held the receive loop back has ended: queries see
	// the grown rate and the empty window, but only an operation moves the
	// limiter on and reports it.
	h.clock.Advance(time.Minute)
	for range 3 {
		if got := h.a.Available(); got != 4 {
			t.Errorf("Available a window later = %d, want 4 calls under the grown 4800", got)
		}
		h.a.Backoff("m")
		if s := h.state("m"); s.Rate != 4_800 || s.TokensInWindow != 0 || !s.LastChange.Equal(cut) {
			t.Errorf("Snapshot a window later: %+v, want rate 4800, an empty window and LastChange still %v", s, cut)
		}
	}
	if got := reported(); !slices.Equal(got, before) {
		t.Errorf("queries reported %q, want nothing reported by a query", got[len(before):])
	}
	h.acquire("m", 1_000).Release(limiter.Success)
	if got := reported(); len(got) != len(before)+1 || got[len(before)] != limiter.ReasonRateGrew {
		t.Errorf("after the next operation OnChange saw %q, want one %q", got[len(before):], limiter.ReasonRateGrew)
	}
	if s := h.state("m"); s.Rate != 4_800 || !s.LastChange.Equal(h.clock.Now()) {
		t.Errorf("after the next operation: %+v, want rate 4800 changed now", s)
	}
}

// TestAdaptiveQueriesDoNotChangeDecisions runs one scripted workload twice:
// once polling Available once between operations, as the worker's receive
// loop does, and once polling it five times and calling Backoff and
// Snapshot as well, between operations and halfway through every clock
// step. Every decision must be the same.
func TestAdaptiveQueriesDoNotChangeDecisions(t *testing.T) {
	t.Parallel()
	more := func(h *harness) {
		for range 4 {
			h.a.Available()
		}
		h.a.Backoff("a")
		h.a.Backoff("b")
		h.a.Snapshot()
	}
	during := func(h *harness) {
		h.a.Backoff("a")
		h.a.Backoff("b")
		h.a.Snapshot()
	}
	for seed := range uint64(12) {
		want := runScript(t, seed, nil, nil)
		got := runScript(t, seed, more, during)
		for i := range min(len(want), len(got)) {
			if got[i] != want[i] {
				t.Fatalf("seed %d, step %d: with extra queries\n got %s\nwant %s", seed, i, got[i], want[i])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d steps with extra queries, want %d", seed, len(got), len(want))
		}
	}
}

type scriptResult struct {
	id  int
	p   limiter.Permit
	err error
}

type scriptPermit struct {
	id int
	p  limiter.Permit
}

// runScript drives a limiter for two models through 300 pseudo-random steps
// (acquires of mixed sizes, releases with every outcome, cancelled waits,
// clock steps up to a window long) and returns, for each step, what it
// decided: who was admitted, the OnChange calls, Available's answer and
// every model's state. Available is called once after every step; extra,
// if set, is called after that, and during halfway through clock steps.
func runScript(t *testing.T, seed uint64, extra, during func(*harness)) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var mu sync.Mutex
	var changes []string
	h := newHarness(t, limiter.Config{
		InitialLimit:  1 + rng.IntN(8),
		InitialTokens: []int{5_000, 20_000, 100_000}[rng.IntN(3)],
		MaxBypass:     []int{-1, 2, 0}[rng.IntN(3)],
		Models:        []string{"a"},
		Rand:          func() float64 { return 0.5 },
		OnChange: func(model string, old, new limiter.State, reason string) {
			mu.Lock()
			changes = append(changes, fmt.Sprintf("%s %s %+v -> %+v", model, reason, old, new))
			mu.Unlock()
		},
	})
	models := []string{"a", "b"}
	results := make(chan scriptResult, 64)
	arrived := map[int]scriptResult{} // results taken while waiting for another
	type pendingCall struct {
		model  string
		cancel context.CancelFunc
	}
	pending := map[int]pendingCall{}
	var held []scriptPermit
	var trace []string

	receive := func(what string) scriptResult {
		select {
		case r := <-results:
			return r
		case <-time.After(failsafe):
			t.Fatalf("seed %d: %s never came", seed, what)
		}
		return scriptResult{}
	}
	// settle collects every waiter the step admitted, then records it.
	settle := func(step string) {
		waiting := 0
		for _, m := range models {
			if s, ok := h.lookup(m); ok {
				waiting += s.Waiting
			}
		}
		admitted := map[int]limiter.Permit{}
		for id, r := range arrived {
			admitted[id] = r.p
			delete(arrived, id)
		}
		for len(pending)-len(admitted) > waiting {
			r := receive("an admitted waiter")
			admitted[r.id] = r.p
		}
		ids := slices.Sorted(maps.Keys(admitted))
		for _, id := range ids {
			pending[id].cancel()
			delete(pending, id)
			held = append(held, scriptPermit{id, admitted[id]})
		}
		mu.Lock()
		got := changes
		changes = nil
		mu.Unlock()
		trace = append(trace, fmt.Sprintf("%s: admitted %v; changes %q; available %d; %+v", step, ids, got, h.a.Available(), h.a.Snapshot()))
		if extra != nil {
			extra(h)
		}
	}

	for id := range 300 {
		switch k := rng.IntN(100); {
		case k < 40:
			model := models[rng.IntN(len(models))]
			tokens := []int{300, 1_000, 1_000, 2_000, 4_000, 12_000, 60_000}[rng.IntN(7)]
			ctx, cancel := context.WithCancel(t.Context())
			pending[id] = pendingCall{model, cancel}
			go func() {
				p, err := h.a.Acquire(ctx, model, tokens)
				results <- scriptResult{id, p, err}
			}()
			// Wait until it is admitted or queued: the step is done.
			for done := false; !done; {
				select {
				case <-h.waits:
					done = true
				case r := <-results:
					arrived[r.id] = r
					done = r.id == id
				case <-time.After(failsafe):
					t.Fatalf("seed %d: acquire %d neither returned nor waited", seed, id)
				}
			}
			settle(fmt.Sprintf("acquire #%d %s %d", id, model, tokens))
		case k < 75 && len(held) > 0:
			i := rng.IntN(len(held))
			p := held[i]
			held = slices.Delete(held, i, i+1)
			o := []limiter.Outcome{limiter.Success, limiter.Success, limiter.Dropped, limiter.Ignored}[rng.IntN(4)]
			p.p.Release(o)
			settle(fmt.Sprintf("release #%d %v", p.id, o))
		case k < 93:
			d := []time.Duration{time.Second, 5 * time.Second, 20 * time.Second, time.Minute}[rng.IntN(4)]
			h.clock.Advance(d / 2)
			if during != nil {
				during(h)
			}
			h.clock.Advance(d - d/2)
			settle(fmt.Sprintf("advance %v", d))
		case len(pending) > 0:
			ids := slices.Sorted(maps.Keys(pending))
			victim := ids[rng.IntN(len(ids))]
			pending[victim].cancel()
			delete(pending, victim)
			// Its Acquire returns once it has left the queue and let others in.
			for {
				r := receive("a cancelled wait's error")
				if r.id != victim {
					arrived[r.id] = r
					continue
				}
				if r.err == nil {
					t.Fatalf("seed %d: cancelled wait #%d got a permit", seed, victim)
				}
				break
			}
			settle(fmt.Sprintf("cancel #%d", victim))
		}
	}
	for _, c := range pending {
		c.cancel()
	}
	return trace
}
