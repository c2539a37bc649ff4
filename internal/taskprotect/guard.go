package taskprotect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of GuardConfig.
const (
	// DefaultExpires bounds how long a task that stopped renewing (a hung or
	// killed worker) keeps blocking scale-in. An hour is far above a job's
	// call timeout (10 minutes) and costs one renewal per half hour.
	DefaultExpires = 60 * time.Minute
	// DefaultGrace is how long the worker must hold no job before protection
	// comes off: a queue with steady work refills a slot within a receive
	// (20 s long poll), and clearing protection between two jobs would only
	// open a window for scale-in to stop a task about to be busy again.
	DefaultGrace = 30 * time.Second
	// DefaultRetry is the wait before a failed call is tried again.
	DefaultRetry = 30 * time.Second
	// DefaultCallTimeout bounds one call to the agent.
	DefaultCallTimeout = 10 * time.Second
)

// GuardConfig tunes a Guard. Zero fields take the defaults (ApplyDefaults).
type GuardConfig struct {
	// Expires is the protection period asked for; default DefaultExpires,
	// within [MinExpires, MaxExpires].
	Expires time.Duration
	// Renew is how often protection is renewed while busy; default
	// Expires/2, and below Expires so it never lapses while renewals work.
	Renew time.Duration
	// Grace is how long the worker must be idle before protection is
	// cleared; default DefaultGrace.
	Grace time.Duration
	// Retry is the wait after a failed call; default DefaultRetry.
	Retry time.Duration
	// CallTimeout bounds one call; default DefaultCallTimeout.
	CallTimeout time.Duration
	// NewTimer makes the guard's timers; default time.NewTimer. Tests
	// inject a fake clock.
	NewTimer func(time.Duration) Timer
}

// Timer is the part of *time.Timer the guard uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

// ApplyDefaults fills every zero field.
func (c *GuardConfig) ApplyDefaults() {
	if c.Expires == 0 {
		c.Expires = DefaultExpires
	}
	if c.Renew == 0 {
		c.Renew = c.Expires / 2
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.NewTimer == nil {
		c.NewTimer = func(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }
	}
}

// Validate reports every problem at once. Call it after ApplyDefaults.
func (c GuardConfig) Validate() error {
	var errs []error
	if c.Expires < MinExpires || c.Expires > MaxExpires {
		errs = append(errs, fmt.Errorf("task protection expires: %s is outside %s to %s", c.Expires, MinExpires, MaxExpires))
	}
	if c.Renew <= 0 || c.Renew >= c.Expires {
		errs = append(errs, fmt.Errorf("task protection renew: %s must be above 0 and below expires (%s), or protection lapses while busy", c.Renew, c.Expires))
	}
	if c.Grace < 0 || c.Retry <= 0 || c.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("task protection: grace (%s) must be 0 or more, retry (%s) and call timeout (%s) above 0", c.Grace, c.Retry, c.CallTimeout))
	}
	return errors.Join(errs...)
}

// protector is what a Guard needs of a Client.
type protector interface {
	Enable(ctx context.Context, expires time.Duration) (State, error)
	Disable(ctx context.Context) (State, error)
}

// Guard keeps the task protected while the worker holds jobs. Busy never
// blocks; one goroutine makes the calls.
type Guard struct {
	client protector
	cfg    GuardConfig
	log    *slog.Logger

	mu   sync.Mutex
	held int
	kick chan struct{} // buffered 1: "held changed"
	stop chan struct{}
	done chan struct{}
	once sync.Once
	// protected is what the agent was last told successfully; read by
	// Close after the loop ends.
	protected bool
	// stepped, when set (tests), receives after each event the loop handled.
	stepped chan<- struct{}
}

// NewGuard starts a guard over c. With a nil c (outside ECS) it returns a
// Guard that does nothing. cfg's zero fields take the defaults; an invalid
// cfg is an error.
func NewGuard(c *Client, cfg GuardConfig, log *slog.Logger) (*Guard, error) {
	if c == nil {
		return nil, nil
	}
	return newGuard(c, cfg, log)
}

func newGuard(p protector, cfg GuardConfig, log *slog.Logger) (*Guard, error) {
	return startGuard(p, cfg, log, nil)
}

func startGuard(p protector, cfg GuardConfig, log *slog.Logger, stepped chan<- struct{}) (*Guard, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{client: p, cfg: cfg, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), stepped: stepped}
	go g.loop()
	return g, nil
}

// Busy tells the guard how many jobs the worker holds now. Call it on every
// change; it returns at once. A nil Guard ignores it.
func (g *Guard) Busy(n int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.held = n
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default: // a kick is pending; the loop reads the latest count
	}
}

// Close stops the guard and, if the task is protected, clears protection
// within ctx (failures logged). The worker calls it after its drain.
func (g *Guard) Close(ctx context.Context) {
	if g == nil {
		return
	}
	g.once.Do(func() { close(g.stop) })
	<-g.done
	if g.protected {
		cctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
		defer cancel()
		if _, err := g.client.Disable(cctx); err != nil {
			g.log.Warn("task protection not cleared at shutdown; it lapses by itself", "expires_in", g.cfg.Expires.String(), "err", err)
			return
		}
		g.protected = false
		g.log.Info("task protection cleared", "reason", "shutdown")
	}
}

// timer is an optional Timer: nil means not running.
type timer struct{ t Timer }

func (t *timer) start(newTimer func(time.Duration) Timer, d time.Duration) {
	t.halt()
	t.t = newTimer(d)
}

func (t *timer) halt() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
}

func (t *timer) c() <-chan time.Time {
	if t.t == nil {
		return nil
	}
	return t.t.C()
}

// loop is the guard's state machine. Its state is held (jobs now),
// protected (what the agent was last told), and three timers: renew
// (protected, time to renew), grace (idle, protection kept until it fires)
// and retry (a call failed). After each event, want = held > 0 or grace
// running; the one transition is then: want and not protected, with no retry
// pending (or a renewal or retry due) -> Enable; protected and not want ->
// Disable.
func (g *Guard) loop() {
	defer close(g.done)
	var renew, grace, retry timer
	defer func() { renew.halt(); grace.halt(); retry.halt() }()
	held := 0
	for {
		due := false
		select {
		case <-g.stop:
			return
		case <-g.kick:
			g.mu.Lock()
			held = g.held
			g.mu.Unlock()
			switch {
			case held > 0:
				grace.halt()
			case g.protected && grace.t == nil:
				grace.start(g.cfg.NewTimer, g.cfg.Grace)
			}
		case <-renew.c():
			renew.t, due = nil, true
		case <-grace.c():
			grace.t = nil
		case <-retry.c():
			retry.t, due = nil, true
		}
		g.step(held, due, &renew, &grace, &retry)
		if g.stepped != nil {
			g.stepped <- struct{}{}
		}
	}
}

// step makes the one call, if any, that the state after an event asks for.
func (g *Guard) step(held int, due bool, renew, grace, retry *timer) {
	want := held > 0 || grace.t != nil
	switch {
	// A failed call waits for its retry: Busy changes while the agent is
	// failing must not turn into a stream of calls.
	case want && ((!g.protected && retry.t == nil) || due):
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.CallTimeout)
		st, err := g.client.Enable(ctx, g.cfg.Expires)
		cancel()
		if err != nil {
			g.log.Warn("task protection not set; scale-in may stop this task while it holds jobs", "held", held, "retry_in", g.cfg.Retry.String(), "err", err)
			retry.start(g.cfg.NewTimer, g.cfg.Retry)
			return
		}
		if !g.protected {
			g.log.Info("task protection set", "held", held, "expires_at", st.ExpiresAt)
		} else {
			g.log.Debug("task protection renewed", "held", held, "expires_at", st.ExpiresAt)
		}
		g.protected = true
		retry.halt()
		renew.start(g.cfg.NewTimer, g.cfg.Renew)
	case !want && g.protected:
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.CallTimeout)
		_, err := g.client.Disable(ctx)
		cancel()
		if err != nil {
			g.log.Warn("task protection not cleared; scale-in cannot stop this idle task until it lapses", "retry_in", g.cfg.Retry.String(), "err", err)
			renew.halt() // idle: never extend it
			retry.start(g.cfg.NewTimer, g.cfg.Retry)
			return
		}
		g.log.Info("task protection cleared", "reason", "idle")
		g.protected = false
		renew.halt()
		retry.halt()
	}
}
