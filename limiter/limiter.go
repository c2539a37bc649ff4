package limiter

import (
	"context"
	"fmt"
	"sync"
)

// Outcome is how a call that held a permit ended, as far as capacity goes.
type Outcome int

const (
	// Success: the model served the call.
	Success Outcome = iota
	// Dropped: the model refused for capacity (throttled, not ready).
	Dropped
	// Ignored: the call ended for a reason unrelated to capacity (validation,
	// cancellation, a guardrail block before the model ran).
	Ignored
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Dropped:
		return "dropped"
	case Ignored:
		return "ignored"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Permit is one admitted call. Release it exactly once.
type Permit interface {
	Release(Outcome)
}

// Fixed admits at most a fixed number of concurrent calls per model.
type Fixed struct {
	mu       sync.Mutex
	limits   map[string]int
	fallback int
	sems     map[string]chan struct{}
}

// NewFixed limits every model to perModel calls at once; limits overrides it
// for the models it names. perModel must be at least 1.
func NewFixed(perModel int, limits map[string]int) *Fixed {
	return &Fixed{limits: limits, fallback: max(perModel, 1), sems: map[string]chan struct{}{}}
}

func (f *Fixed) sem(model string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sems[model]
	if !ok {
		n := f.fallback
		if l, ok := f.limits[model]; ok && l > 0 {
			n = l
		}
		s = make(chan struct{}, n)
		f.sems[model] = s
	}
	return s
}

// Acquire waits for a permit for model, or for ctx to end. tokens is the
// call's expected quota reservation; Fixed ignores it.
func (f *Fixed) Acquire(ctx context.Context, model string, tokens int) (Permit, error) {
	s := f.sem(model)
	select {
	case s <- struct{}{}:
		return &fixedPermit{sem: s}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a %s permit: %w", model, ctx.Err())
	}
}

// Available is the number of free permits across the models in limits (the
// models tierq is configured to call); it feeds the worker's receive loop.
func (f *Fixed) Available() int {
	n := 0
	for model := range f.limits {
		s := f.sem(model)
		n += cap(s) - len(s)
	}
	return n
}

type fixedPermit struct {
	once sync.Once
	sem  chan struct{}
}

func (p *fixedPermit) Release(Outcome) { p.once.Do(func() { <-p.sem }) }
