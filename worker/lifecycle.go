package worker

// msgState is where one held message is in its life. Every change of state
// goes through msgState.next, one transition function, table-tested in
// lifecycle_test.go; the worker's loops only ask what state a message is in.
//
//	running ──returned──────────────▶ settled (deleted, released or dead-lettered)
//	running ──returned late─────────▶ deferred (an error after the drain window:
//	                                  released with the rest, at once)
//	running ──lost──────────────────▶ lost (visibility cannot be extended: job
//	                                  cancelled, message left to reappear)
//	lost    ──returned, returned late▶ settled (only a success is still acted on)
//	running, lost, deferred ──abandon▶ abandoned (given up at shutdown; whatever
//	                                  the job does next is ignored)
type msgState int

const (
	msgRunning msgState = iota
	msgLost
	msgSettled
	msgDeferred
	msgAbandoned
)

func (s msgState) String() string {
	return [...]string{"running", "lost", "settled", "deferred", "abandoned"}[s]
}

// msgEvent is what happens to a held message.
type msgEvent int

const (
	// evReturned: the Processor returned.
	evReturned msgEvent = iota
	// evReturnedLate: the Processor returned an error after the drain window
	// ended (the worker cancelled its jobs).
	evReturnedLate
	// evLost: the message's visibility cannot be extended any more.
	evLost
	// evAbandon: shutdown gives up on the message.
	evAbandon
)

func (e msgEvent) String() string {
	return [...]string{"returned", "returned late", "lost", "abandon"}[e]
}

// next is the state after e, and whether e applies in s at all: an event
// that does not apply (a second loss, a return after abandonment) changes
// nothing.
func (s msgState) next(e msgEvent) (msgState, bool) {
	switch {
	case s == msgRunning && e == evReturned:
		return msgSettled, true
	case s == msgRunning && e == evReturnedLate:
		return msgDeferred, true
	case s == msgRunning && e == evLost:
		return msgLost, true
	case s == msgLost && (e == evReturned || e == evReturnedLate):
		return msgSettled, true
	case (s == msgRunning || s == msgLost || s == msgDeferred) && e == evAbandon:
		return msgAbandoned, true
	}
	return s, false
}

// running reports whether the Processor has not returned for the message.
func (s msgState) running() bool { return s == msgRunning || s == msgLost }
