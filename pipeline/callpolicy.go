package pipeline

import "time"

// The model-call policy: after each attempt that failed in a way worth
// another try, what the call does next and how long it waits. It is a pure
// function of what has happened so far, so its rules are table-tested
// without clocks, SDKs or limiters (callpolicy_test.go); converse carries
// out what it decides.
//
//   - A throttle is snoozed, not failed: it spends none of MaxAttempts
//     (River's JobSnooze). The call waits and asks again, for at most
//     MaxSnooze from its first throttle; a wait that would end past that
//     releases the message instead, because a slot held that long serves
//     nobody.
//   - A tier with a fallback model spills over once: when the call has been
//     throttled for the tier's spillover delay, counted from its first
//     throttle, it moves to the fallback at once, without waiting, since the
//     fallback has its own quota. Later throttles on the fallback are
//     snoozed like any other; the snooze budget and MaxAttempts count the
//     whole call, both models.
//   - Any other transient error spends an attempt and waits the next
//     backoff; after MaxAttempts, or when the backoff schedule ends, the
//     message is released.

// callPolicy is what the policy is configured with.
type callPolicy struct {
	maxAttempts int
	maxSnooze   time.Duration
	// fallback says the tier has a fallback model, spillAfter how long a
	// call must have been throttled before it moves there.
	fallback   bool
	spillAfter time.Duration
}

// callState is what has happened so far in one model call.
type callState struct {
	// failures are transient errors other than throttles; throttles count
	// throttles on both models.
	failures, throttles int
	// firstThrottle is when the call was first throttled; zero before.
	firstThrottle time.Time
	spilled       bool
}

// callStep is what the call does next.
type callStep int

const (
	// stepRetry: wait, then try again on the same model.
	stepRetry callStep = iota
	// stepSpill: move to the tier's fallback model and try at once.
	stepSpill
	// stepReleaseSnoozed: throttled for longer than MaxSnooze; release.
	stepReleaseSnoozed
	// stepReleaseExhausted: every attempt failed; release.
	stepReleaseExhausted
)

func (s callStep) String() string {
	return [...]string{"retry", "spill", "release-snoozed", "release-exhausted"}[s]
}

// next decides after a failed attempt. throttled says the attempt was
// refused for capacity; now is the clock. snoozeWait is how long to wait
// after a throttle (the limiter's suggestion, or the next backoff), and
// errWait the next backoff after another error, with true when the schedule
// has ended (go-retry's Backoff.Next); each is asked only when its answer is
// needed, so a schedule advances only when it is used.
func (pol callPolicy) next(st callState, throttled bool, now time.Time,
	snoozeWait func() time.Duration, errWait func() (time.Duration, bool)) (callState, callStep, time.Duration) {
	if !throttled {
		st.failures++
		d, stop := errWait()
		if st.failures >= pol.maxAttempts || stop {
			return st, stepReleaseExhausted, 0
		}
		return st, stepRetry, d
	}
	st.throttles++
	if st.firstThrottle.IsZero() {
		st.firstThrottle = now
	}
	throttledFor := now.Sub(st.firstThrottle)
	spill := !st.spilled && pol.fallback && throttledFor >= pol.spillAfter
	wait := time.Duration(0)
	if !spill {
		wait = snoozeWait()
	}
	if now.Add(wait).After(st.firstThrottle.Add(pol.maxSnooze)) {
		return st, stepReleaseSnoozed, 0
	}
	if spill {
		st.spilled = true
		return st, stepSpill, 0
	}
	return st, stepRetry, wait
}
