package limiter

import (
	"math"
	"time"
)

// maxGrowDoublings caps how far the rate's growth per window doubles after
// windows that grew in a row: at most 16 steps a window.
const maxGrowDoublings = 4

// maxRecutDoublings caps how deep repeated cuts within a window go: Cut^4
// (0.81 for the default Cut). Cut^8 found a halved quota a little faster
// in the benchmark but undershot it for two minutes (94.6% goodput against
// 97.0%).
const maxRecutDoublings = 2

// pacer paces one model's reservations against a learned rate: tokens
// reserved per Config.Window, as Bedrock counts TPM. It keeps a sliding log
// of the reservations admitted in the last Window; a call fits if its
// reservation plus the log's fits the rate. The rate is unlearned (no
// pacing) until the first throttle, is cut on throttles and grows after a
// Window in which it held calls back without one.
//
// Time moves only in advance: every other method reads the pacer as of the
// last advance. at gives a copy advanced to a later time for queries, so
// looking never changes what the pacer decides.
//
// It is a plain value: the caller serialises every call (Adaptive holds its
// lock).
type pacer struct {
	cfg *Config
	// rate is the learned cap on tokens reserved per window; 0 until the
	// first throttle.
	rate    float64
	firstAt time.Time // first admission
	// log holds the reservations admitted in the last window, oldest
	// first; gone counts those that left it, so log[i] is reservation
	// number gone+i. windowTokens sums those not throttled.
	log          []reservation
	gone         uint64
	windowTokens int
	// cuts counts rate cuts; a call remembers it so a throttle of a call
	// admitted after the last cut can cut again within the window.
	cuts    uint64
	lastCut time.Time
	// growFrom starts the current growth period; held records that the
	// rate held a call back during it, heldNext that it held one back
	// after the period ended but before advance started the next one.
	growFrom       time.Time
	held, heldNext bool
	// streak counts growths since the last cut; recuts counts cuts since
	// the last once-per-window cut.
	streak, recuts int
	// meanTokens is a moving average of requested reservations: the size
	// assumed for the next call, and the least the rate grows by.
	meanTokens float64
}

// reservation is one admitted call in the log.
type reservation struct {
	at     time.Time
	tokens int
	// throttled calls reserved nothing (Bedrock and the simulator reserve
	// only for admitted calls): they stay in the log but not in the
	// window's tokens.
	throttled bool
}

// ticket is what an admitted call keeps of its reservation, to hand back
// with its outcome.
type ticket struct {
	seq    uint64 // its number in the log
	tokens int
	cuts   uint64 // rate cuts before it was admitted
}

func newPacer(cfg *Config) pacer { return pacer{cfg: cfg} }

// intRate is the number of tokens per window the learned rate allows.
func (p *pacer) intRate() int { return whole(p.rate) }

// advance moves the pacer to now: reservations a Window old leave the log,
// and a growth period that has ended grows the rate if it held calls back.
// It reports whether the rate grew.
func (p *pacer) advance(now time.Time) (grew bool) {
	p.expire(now)
	return p.roll(now)
}

// at is the pacer as advance(now) would leave it, without changing p.
// The copy shares p's log but never writes to it.
func (p pacer) at(now time.Time) pacer {
	p.advance(now)
	return p
}

// expire drops the reservations a Window old from the log. It only
// reslices the log, so a copy made by at may expire on its own.
func (p *pacer) expire(now time.Time) {
	n := 0
	for n < len(p.log) && now.Sub(p.log[n].at) >= p.cfg.Window {
		if !p.log[n].throttled {
			p.windowTokens -= p.log[n].tokens
		}
		n++
	}
	p.log = p.log[n:]
	p.gone += uint64(n)
}

// periodOver reports whether the growth period has ended by now.
func (p *pacer) periodOver(now time.Time) bool {
	return p.rate > 0 && now.Sub(p.growFrom) >= p.cfg.Window
}

// roll ends a growth period that has ended by now and starts the next.
// A window without a counted throttle (every counted throttle cuts and
// restarts the period): if the rate held calls back, it may be too low.
// Growth is at least one average call, an additive term that lets
// processes sharing a quota converge to equal shares (Chiu–Jain), and
// doubles with every window that grew since the last cut (up to
// maxGrowDoublings), so a rate learned far too low (from a concurrency
// throttle, or while others held the quota) recovers in a few windows while
// one just cut probes slowly.
func (p *pacer) roll(now time.Time) (grew bool) {
	if !p.periodOver(now) {
		return false
	}
	if p.held {
		step := max(p.cfg.Grow*p.rate, p.meanTokens, 1)
		p.rate += step * float64(int(1)<<min(p.streak, maxGrowDoublings))
		p.streak++
		grew = true
	}
	p.growFrom, p.held, p.heldNext = now, p.heldNext, false
	return grew
}

// hold records that the rate held a call back at now. After the period has
// ended and before advance starts the next, it counts for the next one: the
// call was held back in it.
func (p *pacer) hold(now time.Time) {
	if p.periodOver(now) {
		p.heldNext = true
	} else {
		p.held = true
	}
}

// fits reports whether a call reserving tokens fits the window: always
// while the rate is unlearned, and when the window is empty, so a call
// larger than the whole rate runs alone rather than never.
func (p *pacer) fits(tokens int) bool {
	return p.rate == 0 || p.windowTokens == 0 || p.windowTokens+tokens <= p.intRate()
}

// full reports whether the rate would hold the next (average) call back.
func (p *pacer) full() bool { return !p.fits(p.next()) }

// fitsAt is when a call reserving tokens will fit the window, as its oldest
// reservations leave it; the zero time if it fits now.
func (p *pacer) fitsAt(tokens int) time.Time {
	if p.fits(tokens) {
		return time.Time{}
	}
	left, limit := p.windowTokens, p.intRate()
	for _, r := range p.log {
		if r.throttled {
			continue
		}
		left -= r.tokens
		if left == 0 || left+tokens <= limit {
			return r.at.Add(p.cfg.Window)
		}
	}
	return time.Time{} // unreachable: an empty window fits anything
}

// room is how many more average calls fit the window after waiting calls
// (at least one while the window is empty); negative when the waiting
// calls alone overfill it. Only meaningful once the rate is learned.
func (p *pacer) room(waiting int) int {
	fit := (p.intRate() - p.windowTokens) / p.next()
	if p.windowTokens == 0 {
		fit = max(fit, 1)
	}
	return fit - waiting
}

// next is the reservation assumed for the next call.
func (p *pacer) next() int { return max(1, int(math.Ceil(p.meanTokens))) }

// note folds a requested reservation into the moving average.
func (p *pacer) note(tokens int) {
	if p.meanTokens == 0 {
		p.meanTokens = float64(tokens)
		return
	}
	p.meanTokens += (float64(tokens) - p.meanTokens) / 16
}

// admit logs a call reserving tokens, admitted at now.
func (p *pacer) admit(now time.Time, tokens int) ticket {
	if p.firstAt.IsZero() {
		p.firstAt = now
	}
	t := ticket{seq: p.gone + uint64(len(p.log)), tokens: tokens, cuts: p.cuts}
	p.log = append(p.log, reservation{at: now, tokens: tokens})
	p.windowTokens += tokens
	return t
}

// unreserve takes a call that never ran (throttled, or admitted after its
// caller gave up) out of the window's tokens. Once its reservation has
// left the log there is nothing to take.
func (p *pacer) unreserve(t ticket) {
	if t.seq < p.gone {
		return
	}
	r := &p.log[t.seq-p.gone]
	if !r.throttled {
		r.throttled = true
		p.windowTokens -= r.tokens
	}
}

// throttled answers a throttle at now of the call holding t; unreserve it
// first. One rate cut per window: throttles of calls admitted
// before the last cut are the same overshoot, answered already; a call
// admitted after it that is throttled shows the cut rate is still too high,
// so it cuts again. It reports whether the rate was cut, and whether this
// was the window's first cut (windowCut): the concurrency limit decreases
// only then, since calls admitted after a cut are throttled until the
// quota's minute ends, and cutting the limit for each would collapse it.
func (p *pacer) throttled(now time.Time, t ticket) (cut, windowCut bool) {
	windowCut = p.rate == 0 || now.Sub(p.lastCut) >= p.cfg.Window
	if !windowCut && t.cuts != p.cuts {
		return false, false
	}
	p.cut(now, t.tokens, windowCut)
	return true, windowCut
}

// cut sets the rate to Cut × min(rate, tokens admitted in the window and
// not throttled), learning it on the first throttle. The window's tokens
// are what the quota let through, so they are the estimate; the throttled
// call counts as at least one call's worth (tokens).
//
// A throttle of a call admitted after the last cut within the same window
// cuts deeper: Cut² for the first such recut, Cut⁴ for every later one. The
// sliding window still holds the previous quota minute's calls, so
// min(rate, window) barely moves when the quota itself dropped; without
// this, halving a quota took a dozen throttles.
func (p *pacer) cut(now time.Time, tokens int, windowCut bool) {
	if windowCut {
		p.recuts = 0
	} else {
		p.recuts = min(p.recuts+1, maxRecutDoublings)
	}
	accepted := float64(max(p.windowTokens, tokens))
	if p.rate > 0 {
		accepted = min(p.rate, accepted)
	} else if seen := now.Sub(p.firstAt); seen < p.cfg.Window {
		// Learning from less than a window of history (a concurrency
		// limit throttled first): extrapolate to a whole window, at most
		// tenfold. If the quota minute was what ran out, the next throttle
		// cuts to what the window really holds.
		accepted *= float64(p.cfg.Window) / float64(max(seen, p.cfg.Window/10))
	}
	p.rate = max(float64(p.cfg.MinRate), math.Pow(p.cfg.Cut, float64(int(1)<<p.recuts))*accepted)
	p.cuts++
	p.lastCut, p.growFrom, p.held, p.heldNext, p.streak = now, now, false, false, 0
}
