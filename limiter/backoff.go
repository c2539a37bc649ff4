package limiter

import (
	"math"
	"time"
)

// dropHalfLife is how fast Backoff forgets drops: a drop counts half as much
// this long after it happened. Ten seconds spans several Bedrock calls, so a
// model that throttles every few calls keeps a longer suggested wait.
const dropHalfLife = 10 * time.Second

// dropScore is one model's recent drops: each counts 1 when it happens and
// halves every dropHalfLife. It is a plain value: the caller serialises
// every call (Adaptive holds its lock).
type dropScore struct {
	score float64 // as of at
	at    time.Time
}

// add counts a drop at now.
func (d *dropScore) add(now time.Time) {
	d.score = d.decayed(now) + 1
	d.at = now
}

// decayed is the score at now.
func (d *dropScore) decayed(now time.Time) float64 {
	if d.score == 0 {
		return 0
	}
	age := max(now.Sub(d.at), 0)
	return d.score * math.Exp2(-float64(age)/float64(dropHalfLife))
}

// backoff is the wait to suggest after a drop: base times drops (at least
// one), capped at maxWait, with equal jitter (half fixed, half r × the
// other half, r in [0, 1)) so callers throttled together do not return
// together, on top of until, the time before the rate window has room.
// Capped, the jitter stays below the cap so callers still spread out.
func backoff(base, maxWait time.Duration, drops float64, until time.Duration, r float64) time.Duration {
	maxD := float64(maxWait)
	j := min(maxD, float64(base)*max(1, drops))
	d := float64(until) + j/2 + r*j/2
	if d > maxD {
		d = maxD - r*j/2
	}
	return time.Duration(d)
}
