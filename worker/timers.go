package worker

import (
	"context"
	"time"
)

// Timers makes the worker's timers and tickers: the drain window, the grace
// after cancelling jobs, the capacity recheck, the receive backoff, the
// delete flush and the heartbeat. Tests inject their own (WithTimers) to
// fire them when they choose instead of waiting on the real clock; the
// default is the real clock.
type Timers interface {
	// After returns a channel that receives once, d from now, and a stop
	// function.
	After(d time.Duration) (<-chan time.Time, func())
	// Every returns a channel that receives every d, and a stop function.
	Every(d time.Duration) (<-chan time.Time, func())
}

// WithTimers sets the worker's timers; the default is the real clock.
func WithTimers(t Timers) Option {
	return func(w *Worker) {
		if t != nil {
			w.timers = t
		}
	}
}

// realTimers are the standard library's.
type realTimers struct{}

func (realTimers) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

func (realTimers) Every(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// sleep waits for d or until ctx is cancelled; it reports whether d passed.
func (w *Worker) sleep(ctx context.Context, d time.Duration) bool {
	c, stop := w.timers.After(d)
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-c:
		return true
	}
}
