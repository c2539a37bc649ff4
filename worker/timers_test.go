package worker

import (
	"context"
	"sync"
	"testing"
	"time"
)

// drainTimer fires the drain window only when the test says so; every
// other timer is the real clock's.
type drainTimer struct {
	realTimers
	window time.Duration
	mu     sync.Mutex
	fire   chan time.Time
	armed  chan struct{}
}

func (d *drainTimer) After(after time.Duration) (<-chan time.Time, func()) {
	if after != d.window {
		return d.realTimers.After(after)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	close(d.armed)
	return d.fire, func() {}
}

// The drain waits for its timer, not for the clock: with an hour's drain
// window the worker still returns as soon as the window's timer fires,
// cancelling the running job and releasing its message at once.
func TestDrainWaitsForItsTimer(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(1)
	cfg := fakeConfig()
	cfg.DrainTimeout = time.Hour
	timers := &drainTimer{window: time.Hour, fire: make(chan time.Time, 1), armed: make(chan struct{})}
	started, cancelled := make(chan struct{}), make(chan struct{})
	w, err := New(cfg, f, ProcessorFunc(func(ctx context.Context, _ Message) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}), WithTimers(timers), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	<-started
	done := make(chan error, 1)
	go func() { done <- stop() }()
	<-timers.armed // the drain window has begun
	select {
	case <-cancelled:
		t.Fatal("the job was cancelled before the drain window ended")
	case <-time.After(50 * time.Millisecond):
	}
	timers.fire <- time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-cancelled
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.vis) != 1 || f.vis[0].secs != 0 {
		t.Errorf("visibility changes %+v, want the message released at once", f.vis)
	}
}
