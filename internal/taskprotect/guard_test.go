package taskprotect_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierq/tierq/internal/taskprotect"
	"github.com/tierq/tierq/internal/testenv"
)

// clock is a fake time source: timers fire only when Advance passes them.
type clock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *clock
	at      time.Duration
	ch      chan time.Time
	stopped bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *clock) NewTimer(d time.Duration) taskprotect.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now + d, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time on and fires what is due; it returns how many fired.
func (c *clock) Advance(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
	fired := 0
	for _, t := range c.timers {
		if !t.stopped && t.at <= c.now {
			t.stopped = true
			t.ch <- time.Time{}
			fired++
		}
	}
	return fired
}

// harness runs a Guard against the agent stand-in on a fake clock.
type harness struct {
	t       *testing.T
	agent   *agent
	clock   *clock
	guard   *taskprotect.Guard
	stepped chan struct{}
	logs    *testenv.Buffer
}

func newHarness(t *testing.T, cfg taskprotect.GuardConfig) *harness {
	t.Helper()
	h := &harness{t: t, agent: newAgent(t), clock: &clock{}, stepped: make(chan struct{}, 100), logs: &testenv.Buffer{}}
	cfg.NewTimer = h.clock.NewTimer
	g, err := taskprotect.StartGuard(client(t, h.agent), cfg, slog.New(slog.NewJSONHandler(h.logs, nil)), h.stepped)
	if err != nil {
		t.Fatal(err)
	}
	h.guard = g
	t.Cleanup(func() { g.Close(context.Background()) })
	return h
}

// busy reports n jobs held and waits until the guard has handled it.
func (h *harness) busy(n int) {
	h.t.Helper()
	h.guard.Busy(n)
	h.wait(1)
}

// advance moves the clock and waits for the guard to handle what fired.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.wait(h.clock.Advance(d))
}

func (h *harness) wait(events int) {
	h.t.Helper()
	for range events {
		select {
		case <-h.stepped:
		case <-time.After(5 * time.Second):
			h.t.Fatal("the guard did not handle an event within 5s")
		}
	}
}

// calls are the requests so far as "on"/"off" (PUTs) in order.
func (h *harness) calls() string {
	var out []string
	for _, r := range h.agent.got() {
		if r.Method != "PUT" {
			continue
		}
		if r.Body["ProtectionEnabled"] == true {
			out = append(out, "on")
		} else {
			out = append(out, "off")
		}
	}
	return strings.Join(out, " ")
}

func (h *harness) wantCalls(want string) {
	h.t.Helper()
	if got := h.calls(); got != want {
		h.t.Errorf("calls %q, want %q", got, want)
	}
}

func TestGuardProtectsWhileBusyAndRenews(t *testing.T) {
	t.Parallel()
	h := newHarness(t, taskprotect.GuardConfig{Expires: 60 * time.Minute, Grace: 30 * time.Second})
	h.busy(1)
	h.wantCalls("on")
	if r := h.agent.got()[0]; r.Body["ExpiresInMinutes"] != 60.0 {
		t.Errorf("ExpiresInMinutes %v, want 60", r.Body["ExpiresInMinutes"])
	}
	h.busy(5)
	h.busy(2)
	h.wantCalls("on") // already protected: more jobs change nothing

	h.advance(29 * time.Minute)
	h.wantCalls("on")
	h.advance(time.Minute) // Renew defaults to Expires/2
	h.wantCalls("on on")
	h.advance(30 * time.Minute)
	h.wantCalls("on on on")

	h.busy(0)
	h.wantCalls("on on on") // grace: still protected
	h.advance(30 * time.Second)
	h.wantCalls("on on on off")
	h.advance(2 * time.Hour)
	h.wantCalls("on on on off") // idle: no renewals
}

// A worker that finishes a job and takes the next within the grace period
// keeps its protection without a call: no flapping.
func TestGuardDoesNotFlap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, taskprotect.GuardConfig{Grace: 30 * time.Second})
	h.busy(1)
	for range 10 {
		h.busy(0)
		h.advance(20 * time.Second)
		h.busy(1)
	}
	h.wantCalls("on")
	h.busy(0)
	h.advance(29 * time.Second)
	h.wantCalls("on")
	h.advance(time.Second)
	h.wantCalls("on off")
	h.busy(1)
	h.wantCalls("on off on")
}

func TestGuardRetriesFailuresAndLogsThem(t *testing.T) {
	t.Parallel()
	h := newHarness(t, taskprotect.GuardConfig{Retry: 30 * time.Second, Grace: time.Second})
	h.agent.set(func(request) (int, string) {
		return 400, `{"error":{"Code":"AccessDeniedException","Message":"not authorized to perform ecs:UpdateTaskProtection"}}`
	})
	h.busy(1)
	h.wantCalls("on")
	if !strings.Contains(h.logs.String(), `"level":"WARN","msg":"task protection not set`) ||
		!strings.Contains(h.logs.String(), "AccessDeniedException") {
		t.Errorf("logs %s: want a WARN naming the error", h.logs)
	}
	h.advance(30 * time.Second)
	h.wantCalls("on on") // retried
	h.agent.set(nil)
	h.advance(30 * time.Second)
	h.wantCalls("on on on")
	h.advance(30 * time.Second)
	h.wantCalls("on on on") // succeeded: no more retries until the renewal

	// Clearing fails too: retried until it works, never renewed meanwhile.
	h.agent.set(func(request) (int, string) { return 500, "" })
	h.busy(0)
	h.advance(time.Second)
	h.wantCalls("on on on off")
	if !strings.Contains(h.logs.String(), "task protection not cleared") {
		t.Errorf("logs %s: want a WARN about clearing", h.logs)
	}
	h.agent.set(nil)
	h.advance(30 * time.Second)
	h.wantCalls("on on on off off")
	h.advance(3 * time.Hour)
	h.wantCalls("on on on off off")
}

// A hung agent delays neither Busy nor the worker: the call times out, is
// logged, and retried once per Retry, however often Busy is called meanwhile.
func TestGuardTimeoutDoesNotBlockBusy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, taskprotect.GuardConfig{CallTimeout: 100 * time.Millisecond, Retry: time.Minute})
	h.agent.mu.Lock()
	h.agent.hang = make(chan struct{})
	h.agent.mu.Unlock()
	start := time.Now()
	for i := range 1000 {
		h.guard.Busy(i%3 + 1)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("1,000 Busy calls took %s with the agent hung; Busy must not wait for the agent", d)
	}
	eventually(t, func() bool { return strings.Contains(h.logs.String(), "deadline exceeded") }, "the timeout logged")
	h.agent.mu.Lock()
	close(h.agent.hang)
	h.agent.hang = nil
	h.agent.mu.Unlock()
	h.wantCalls("on") // one attempt: the Busy calls after it wait for the retry
	h.clock.Advance(time.Minute)
	eventually(t, func() bool { return h.calls() == "on on" }, `calls "on on"`)
}

func eventually(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5s", what)
		}
	}
}

func TestGuardClearsProtectionOnClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t, taskprotect.GuardConfig{})
	h.busy(2)
	h.guard.Close(context.Background())
	h.wantCalls("on off")
	h.guard.Close(context.Background()) // idempotent
	h.wantCalls("on off")
}

func TestGuardConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  taskprotect.GuardConfig
		want string
	}{
		{taskprotect.GuardConfig{Expires: 49 * time.Hour}, "expires: 49h0m0s is outside 1m0s to 48h0m0s"},
		{taskprotect.GuardConfig{Expires: time.Hour, Renew: time.Hour}, "renew: 1h0m0s must be above 0 and below expires"},
		{taskprotect.GuardConfig{Grace: -time.Second}, "grace (-1s) must be 0 or more"},
	} {
		c, _ := taskprotect.New("http://127.0.0.1:1/api/x", nil)
		if _, err := taskprotect.NewGuard(c, tt.cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewGuard(%+v): %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
