package limiter

import "slices"

// fifo is one model's calls waiting for a permit, served in arrival order
// with a bounded bypass: a call that fits may pass one that does not (a huge
// document waiting for the budget to drain) at most maxBypass times in all,
// then serving stops until that call fits. Many small calls thus run wide,
// and a huge one waits for at most maxBypass of them before the model
// drains for it. A negative maxBypass is strict FIFO.
//
// It decides only the order; whether a call fits is its caller's question.
// It is a plain value: the caller serialises every call (Adaptive holds its
// lock).
type fifo struct {
	maxBypass int
	waiters   []*waiter
}

// waiter is one call blocked in Acquire.
type waiter struct {
	tokens int
	// ready is closed once permit is set.
	ready  chan struct{}
	permit *adaptivePermit
	// bypassed counts later calls admitted ahead of this one while it did
	// not fit.
	bypassed int
}

// push adds w at the back.
func (q *fifo) push(w *waiter) { q.waiters = append(q.waiters, w) }

// remove takes w out, wherever it is.
func (q *fifo) remove(w *waiter) {
	q.waiters = slices.DeleteFunc(q.waiters, func(x *waiter) bool { return x == w })
}

// waiting is how many calls wait.
func (q *fifo) waiting() int { return len(q.waiters) }

// head is the reservation of the first waiting call; ok is false if none
// waits.
func (q *fifo) head() (tokens int, ok bool) {
	if len(q.waiters) == 0 {
		return 0, false
	}
	return q.waiters[0].tokens, true
}

// tokens is the sum of the waiting calls' reservations.
func (q *fifo) tokens() int {
	n := 0
	for _, w := range q.waiters {
		n += w.tokens
	}
	return n
}

// serve admits waiting calls in order while open reports room for one
// more: each that fits leaves the queue and is passed to admit; one that
// does not is skipped, and the calls behind it may pass it until the
// first one skipped has been passed maxBypass times. fits and open are
// asked again after every admission, which changes their answers.
func (q *fifo) serve(open func() bool, fits func(*waiter) bool, admit func(*waiter)) {
	var blocked *waiter // first waiter that does not fit
	for i := 0; i < len(q.waiters); {
		if !open() {
			break
		}
		w := q.waiters[i]
		if !fits(w) {
			if blocked == nil {
				blocked = w
			}
			if q.maxBypass < 0 {
				break
			}
			i++
			continue
		}
		if blocked != nil {
			if blocked.bypassed >= q.maxBypass {
				break
			}
			blocked.bypassed++
		}
		q.waiters = slices.Delete(q.waiters, i, i+1)
		admit(w)
	}
}
