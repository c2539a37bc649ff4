package limiter

import "math"

// epsilon absorbs float error when a learned limit is turned into a count of
// calls (6.9999999 is 7).
const epsilon = 1e-9

// whole is how many whole calls (or tokens) a learned float allows.
func whole(x float64) int { return int(math.Floor(x + epsilon)) }

// aimd is one model's concurrency limit and token budget on the calls in
// flight, learned AIMD-style: a counted drop multiplies what was in use by
// Config.Decrease, a success while it is in use adds Increase/limit (the
// budget likewise), so a full limit's worth of successes adds Increase.
//
// It is a plain value: the caller serialises every call (Adaptive holds its
// lock).
type aimd struct {
	cfg *Config
	// limit and budget are learned as floats so additive increase can add
	// fractions of a call per success; admission uses their floors.
	limit, budget float64
	// epoch counts decreases. A call remembers the epoch it was admitted
	// in, and only outcomes of calls from the current epoch move the
	// limits: they are the only ones that say anything about them.
	epoch uint64
	// inFlight and tokens are the calls admitted and not released, and the
	// sum of their reservations.
	inFlight, tokens int
	// reportedLimit and reportedBudget are the values last reported to
	// OnChange, so increases are reported once per whole call or
	// TokenIncrease, not per success.
	reportedLimit  int
	reportedBudget float64
}

func newAIMD(cfg *Config) aimd {
	return aimd{
		cfg:            cfg,
		limit:          float64(cfg.InitialLimit),
		budget:         float64(cfg.InitialTokens),
		reportedLimit:  cfg.InitialLimit,
		reportedBudget: float64(cfg.InitialTokens),
	}
}

// intLimit is the number of calls the learned limit allows.
func (c *aimd) intLimit() int { return whole(c.limit) }

// intBudget is the number of tokens the learned budget allows.
func (c *aimd) intBudget() int { return whole(c.budget) }

// open reports whether another call may start: fewer are in flight than the
// limit allows.
func (c *aimd) open() bool { return c.inFlight < c.intLimit() }

// fits reports whether a call reserving tokens fits the budget. A call
// larger than the whole budget fits when nothing is in flight, so it is
// never starved.
func (c *aimd) fits(tokens int) bool {
	return c.inFlight == 0 || c.tokens+tokens <= c.intBudget()
}

// free is how many more calls the limit allows once waiting calls, which
// take free places first, have theirs; never below zero.
func (c *aimd) free(waiting int) int { return max(0, c.intLimit()-c.inFlight-waiting) }

// admit counts a call reserving tokens as in flight and returns the epoch
// to hand back with its outcome.
func (c *aimd) admit(tokens int) (epoch uint64) {
	c.inFlight++
	c.tokens += tokens
	return c.epoch
}

// release takes a call reserving tokens out of flight.
func (c *aimd) release(tokens int) {
	c.inFlight--
	c.tokens -= tokens
}

// current reports whether a call admitted in epoch was admitted under the
// present limits, so that its outcome may move them.
func (c *aimd) current(epoch uint64) bool { return epoch == c.epoch }

// inUse reports whether the limit and the budget are in use: whether the
// calls (tokens) in flight reach UsedFraction of them, or, for tokens,
// whether the first waiting call, reserving head tokens, is held back by
// the budget (waiting is false when nothing waits). Judge it before
// releasing the call whose outcome is applied: it was part of the load the
// outcome answers for.
func (c *aimd) inUse(head int, waiting bool) (count, tokens bool) {
	need := int(math.Ceil(c.cfg.UsedFraction*float64(c.intLimit()) - epsilon))
	count = c.inFlight >= max(1, need)
	tokens = float64(c.tokens) >= c.cfg.UsedFraction*c.budget-epsilon
	if !tokens && waiting {
		tokens = c.tokens+head > c.intBudget()
	}
	return count, tokens
}

// grow applies additive increase for the success of a call that reserved
// tokens, to what was in use. Only what was in use grows: an idle limit
// would otherwise drift to its maximum and let the next burst overrun the
// quota, and in a fleet sharing one quota it would take the share of
// processes that are busy. It reports whether the growth is worth
// reporting: a whole call or TokenIncrease since the last report.
func (c *aimd) grow(tokens int, countUsed, tokensUsed bool) (report bool) {
	if countUsed {
		c.limit = min(float64(c.cfg.MaxLimit), c.limit+c.cfg.Increase/c.limit)
	}
	if tokensUsed && tokens > 0 {
		// A budget's worth of reservations adds TokenIncrease, whatever the
		// budget's size, as for the limit; a call larger than the budget
		// counts as one budget so a huge one cannot jump it.
		share := min(float64(tokens), c.budget) / c.budget
		c.budget = min(float64(c.cfg.MaxTokens), c.budget+float64(c.cfg.TokenIncrease)*share)
	}
	return c.intLimit() != c.reportedLimit || c.budget-c.reportedBudget >= float64(c.cfg.TokenIncrease)
}

// shrink applies multiplicative decrease for a counted drop to what was in
// use; if neither looked in use (another process took the quota, or a rate
// quota ran out), both shrink. It starts a new epoch either way, and
// reports whether the whole limit or budget changed (not at their floors).
func (c *aimd) shrink(countUsed, tokensUsed bool) (changed bool) {
	oldLimit, oldBudget := c.intLimit(), c.intBudget()
	c.epoch++
	if !countUsed && !tokensUsed {
		countUsed, tokensUsed = true, true
	}
	if countUsed {
		c.limit = max(float64(c.cfg.MinLimit), c.limit*c.cfg.Decrease)
	}
	if tokensUsed {
		c.budget = max(float64(c.cfg.MinTokens), c.budget*c.cfg.Decrease)
	}
	return c.intLimit() != oldLimit || c.intBudget() != oldBudget
}

// reported records that the present limit and budget have been reported.
func (c *aimd) reported() {
	c.reportedLimit = c.intLimit()
	c.reportedBudget = c.budget
}
