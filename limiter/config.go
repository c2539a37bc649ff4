package limiter

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Config configures an Adaptive limiter. The zero value of every field means
// "use the default"; NewAdaptive applies the defaults before it validates, so
// the zero Config is valid.
type Config struct {
	// InitialLimit is the concurrency limit a model starts with. Default 4:
	// low enough that a cold fleet does not open with a throttle storm, and
	// additive increase reaches a few dozen within minutes of steady work.
	InitialLimit int
	// MinLimit is the floor of every model's limit. Default 1: a model is
	// never shut out entirely, so it can always show that capacity is back.
	MinLimit int
	// MaxLimit is the ceiling of every model's limit. Default 64.
	MaxLimit int
	// Decrease multiplies the limit (and, when it was in use, the token
	// budget) on a counted drop. Between 0.5 and 0.9; default 0.7, the
	// CUBIC/AWS-SDK beta: halving overreacts to a single throttle from a
	// quota shared with other processes, 0.9 takes many rounds to back off.
	Decrease float64
	// Increase is how much the limit grows per window of successes while it
	// is in use: each counted success adds Increase/limit, so a full limit's
	// worth of successes adds Increase. Default 1. The growth per round trip
	// does not depend on the limit's size, which is what lets several
	// processes sharing one quota converge to equal shares.
	Increase float64
	// UsedFraction is how full a limit must be for a success to grow it:
	// the calls in flight (counting the one reporting) must reach
	// ceil(UsedFraction × limit), likewise for tokens. Default 0.8. Exactly
	// 1 would rarely grow behind a receive loop that takes only what
	// Available reports; much lower would grow limits nobody uses.
	UsedFraction float64

	// InitialTokens is the token budget a model starts with: the sum of the
	// reservations (estimated input + maxTokens) of its calls in flight.
	// Default 100,000.
	InitialTokens int
	// MinTokens is the floor of every token budget. Default 1,000. A call
	// larger than the budget still runs, alone.
	MinTokens int
	// MaxTokens is the ceiling of every token budget. Default 10,000,000.
	MaxTokens int
	// TokenIncrease is how many tokens the budget grows by per budget's
	// worth of successful reservations while it is in use (see Increase).
	// Default InitialTokens/InitialLimit: one typical call per window.
	TokenIncrease int

	// MaxBypass is how many later calls that fit the token budget may be
	// admitted ahead of a waiting call that does not, before admission stops
	// until it fits. Default 8. Negative means strict FIFO: nothing passes a
	// blocked call. The bypass never applies to the concurrency limit, which
	// every call needs one unit of.
	MaxBypass int

	// Window is how long the quota counts a call's reservation: Bedrock's
	// RPM and TPM quotas are per minute. Default 1m. Set it shorter only for
	// a simulator whose quota minute is compressed.
	Window time.Duration
	// Cut multiplies a model's learned rate (tokens reserved per Window) on
	// a counted throttle: rate = Cut × min(rate, tokens admitted in the last
	// Window and not throttled). In [0.5, 1); default 0.95. The measured
	// window is already what the quota let through, so a deep cut only
	// wastes quota (0.9 cost about 5 points of goodput in the benchmark).
	// Throttles of calls admitted after a cut within the same Window cut
	// deeper (Cut², then Cut⁴), so a quota that halves is found quickly.
	Cut float64
	// Grow is the rate's multiplicative growth per Window in which the rate
	// held calls back and no call admitted after the last cut was
	// throttled. Growth is at least one average reservation per Window, so
	// a process that learned a small rate catches up with its peers, and
	// doubles with each such Window in a row (at most 16×).
	// In (0, 1]; default 0.01.
	Grow float64
	// MinRate is the floor of every learned rate, in tokens per Window.
	// Default 1,000. A call larger than the rate still runs, alone in its
	// window.
	MinRate int

	// BackoffBase is the wait Backoff suggests after an isolated drop; it
	// grows linearly with the model's recent drops. Default 250ms.
	BackoffBase time.Duration
	// BackoffMax caps Backoff. Default 10s.
	BackoffMax time.Duration

	// Models are the models the caller expects to call. Their limiters are
	// created at once, so Available counts their initial capacity before the
	// first call (the worker's receive loop needs that) and Snapshot shows
	// them. Other models get a limiter on their first Acquire.
	Models []string

	// Now is the clock. Default time.Now.
	Now func() time.Time
	// AfterFunc runs f once d has passed on the clock Now reads, like
	// time.AfterFunc, and returns a function that cancels it (reporting
	// whether it did). The limiter uses it to admit waiters when old
	// reservations leave the rate window. Default wraps time.AfterFunc;
	// set it with Now when injecting a clock.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Rand returns a number in [0, 1) for Backoff's jitter. It is called with
	// the limiter's lock held, so it need not be safe for concurrent use.
	// Default math/rand/v2.Float64.
	Rand func() float64
	// OnChange, if set, is called after a model's limit, token budget or
	// rate changes: on every decrease and rate change, and on increases when
	// the limit moves by a whole call or the budget by TokenIncrease (not on
	// every success). It is called without any lock held, from the
	// goroutine whose call caused the change (a release, an Acquire, a
	// wake-up); calls for different changes may run concurrently.
	OnChange func(model string, old, new State, reason string)
}

// Defaults used by ApplyDefaults.
const (
	DefaultInitialLimit  = 4
	DefaultMinLimit      = 1
	DefaultMaxLimit      = 64
	DefaultDecrease      = 0.7
	DefaultIncrease      = 1.0
	DefaultUsedFraction  = 0.8
	DefaultInitialTokens = 100_000
	DefaultMinTokens     = 1_000
	DefaultMaxTokens     = 10_000_000
	DefaultMaxBypass     = 8
	DefaultWindow        = time.Minute
	DefaultCut           = 0.95
	DefaultGrow          = 0.01
	DefaultMinRate       = 1_000
	DefaultBackoffBase   = 250 * time.Millisecond
	DefaultBackoffMax    = 10 * time.Second
)

// Bounds of Config.Decrease.
const (
	minDecrease = 0.5
	maxDecrease = 0.9
	// minCut bounds Config.Cut below: a rate cut answers one minute's
	// overshoot, which is a few percent, not half.
	minCut = 0.5
)

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

// ApplyDefaults replaces every zero field that has a default.
func (c *Config) ApplyDefaults() {
	if c.InitialLimit == 0 {
		c.InitialLimit = DefaultInitialLimit
	}
	if c.MinLimit == 0 {
		c.MinLimit = DefaultMinLimit
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = DefaultMaxLimit
	}
	if c.Decrease == 0 {
		c.Decrease = DefaultDecrease
	}
	if c.Increase == 0 {
		c.Increase = DefaultIncrease
	}
	if c.UsedFraction == 0 {
		c.UsedFraction = DefaultUsedFraction
	}
	if c.InitialTokens == 0 {
		c.InitialTokens = DefaultInitialTokens
	}
	if c.MinTokens == 0 {
		c.MinTokens = DefaultMinTokens
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.TokenIncrease == 0 && c.InitialLimit > 0 {
		c.TokenIncrease = max(1, c.InitialTokens/c.InitialLimit)
	}
	if c.MaxBypass == 0 {
		c.MaxBypass = DefaultMaxBypass
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Cut == 0 {
		c.Cut = DefaultCut
	}
	if c.Grow == 0 {
		c.Grow = DefaultGrow
	}
	if c.MinRate == 0 {
		c.MinRate = DefaultMinRate
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.AfterFunc == nil {
		c.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
}

// Validate reports every problem with c at once. It checks c as it will be
// used, so call ApplyDefaults first (NewAdaptive does) unless every field is
// set.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.MinLimit < 1 {
		bad("MinLimit must be at least 1, got %d", c.MinLimit)
	}
	if c.MaxLimit < c.MinLimit {
		bad("MaxLimit (%d) must be at least MinLimit (%d)", c.MaxLimit, c.MinLimit)
	}
	if c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit {
		bad("InitialLimit must be in MinLimit..MaxLimit (%d..%d), got %d", c.MinLimit, c.MaxLimit, c.InitialLimit)
	}
	if !(c.Decrease >= minDecrease && c.Decrease <= maxDecrease) { // also rejects NaN
		bad("Decrease must be in %.1f..%.1f, got %v", minDecrease, maxDecrease, c.Decrease)
	}
	if !(c.Increase > 0) || math.IsInf(c.Increase, 0) {
		bad("Increase must be a positive number, got %v", c.Increase)
	}
	if !(c.UsedFraction > 0 && c.UsedFraction <= 1) {
		bad("UsedFraction must be in (0, 1], got %v", c.UsedFraction)
	}
	if c.MinTokens < 1 {
		bad("MinTokens must be at least 1, got %d", c.MinTokens)
	}
	if c.MaxTokens < c.MinTokens {
		bad("MaxTokens (%d) must be at least MinTokens (%d)", c.MaxTokens, c.MinTokens)
	}
	if c.InitialTokens < c.MinTokens || c.InitialTokens > c.MaxTokens {
		bad("InitialTokens must be in MinTokens..MaxTokens (%d..%d), got %d", c.MinTokens, c.MaxTokens, c.InitialTokens)
	}
	if c.TokenIncrease < 1 {
		bad("TokenIncrease must be at least 1, got %d", c.TokenIncrease)
	}
	if c.Window <= 0 {
		bad("Window must be positive, got %v", c.Window)
	}
	if !(c.Cut >= minCut && c.Cut < 1) {
		bad("Cut must be in [%.1f, 1), got %v", minCut, c.Cut)
	}
	if !(c.Grow > 0 && c.Grow <= 1) {
		bad("Grow must be in (0, 1], got %v", c.Grow)
	}
	if c.MinRate < 1 {
		bad("MinRate must be at least 1, got %d", c.MinRate)
	}
	if c.BackoffBase <= 0 {
		bad("BackoffBase must be positive, got %v", c.BackoffBase)
	}
	if c.BackoffMax < c.BackoffBase {
		bad("BackoffMax (%v) must be at least BackoffBase (%v)", c.BackoffMax, c.BackoffBase)
	}
	for i, m := range c.Models {
		if m == "" {
			bad("Models[%d] is empty", i)
		}
	}
	if c.Now == nil {
		bad("Now is required (ApplyDefaults sets time.Now)")
	}
	if c.Rand == nil {
		bad("Rand is required (ApplyDefaults sets math/rand/v2.Float64)")
	}
	if c.AfterFunc == nil {
		bad("AfterFunc is required (ApplyDefaults wraps time.AfterFunc)")
	}
	return errors.Join(errs...)
}
