package worker

import (
	"errors"
	"time"
)

// What a Processor returns for a message, built by the constructors below
// (River's JobSnooze and JobCancel are the model). nil means the message is
// done and is deleted.
//
// The worker owns the release delay (Config.ReleaseDelay): a processor asks
// for a release, and only says how long when it has a reason of its own (at
// once on shutdown, a short wait after a write conflict, until another
// delivery's claim ends).

// Released is a message given back to the queue for a later delivery:
// transient trouble, nothing written. errors.As finds it in an error chain.
type Released struct {
	Err error
	// After is the delay the processor asked for; see Delay.
	After time.Duration
	mode  releaseMode
}

type releaseMode int

const (
	releaseDefault releaseMode = iota // after the worker's release delay
	releaseAfter                      // after exactly After
	releaseWithin                     // after After, but no later than the release delay
)

// Release gives the message back to reappear after the worker's release
// delay (Config.ReleaseDelay).
func Release(err error) error { return &Released{Err: orUnknown(err), mode: releaseDefault} }

// ReleaseAfter gives the message back to reappear after d: 0 makes it
// visible at once, for another worker (shutdown).
func ReleaseAfter(err error, d time.Duration) error {
	return &Released{Err: orUnknown(err), After: max(d, 0), mode: releaseAfter}
}

// ReleaseWithin gives the message back to reappear after d, or after the
// worker's release delay if that is sooner.
func ReleaseWithin(err error, d time.Duration) error {
	return &Released{Err: orUnknown(err), After: max(d, 0), mode: releaseWithin}
}

// Delay is how long the message stays invisible, given the worker's
// release delay.
func (r *Released) Delay(releaseDelay time.Duration) time.Duration {
	switch r.mode {
	case releaseAfter:
		return r.After
	case releaseWithin:
		return min(r.After, releaseDelay)
	}
	return releaseDelay
}

func (r *Released) Error() string { return r.Err.Error() }
func (r *Released) Unwrap() error { return r.Err }

// DeadLettered is a message that can never succeed (it is not a job): it is
// sent to the dead-letter queue with its error text as the reason attribute,
// then deleted.
type DeadLettered struct{ Err error }

// DeadLetter marks a message as one that can never succeed.
func DeadLetter(err error) error { return &DeadLettered{Err: orUnknown(err)} }

func (d *DeadLettered) Error() string { return d.Err.Error() }
func (d *DeadLettered) Unwrap() error { return d.Err }

// outcomeDelay reads a failed job's error: whether to dead-letter it, and
// otherwise after how long to release it. An error that is neither is
// released after the release delay, like Release.
func outcomeDelay(err error, releaseDelay time.Duration) (deadLetter bool, delay time.Duration) {
	var dl *DeadLettered
	if errors.As(err, &dl) {
		return true, 0
	}
	var rel *Released
	if errors.As(err, &rel) {
		return false, rel.Delay(releaseDelay)
	}
	return false, releaseDelay
}

func orUnknown(err error) error {
	if err == nil {
		return errors.New("unknown error")
	}
	return err
}
