package worker

import (
	"context"
	"errors"
	"log/slog"
)

// settle acts on a job's outcome per the Processor contract.
func (w *Worker) settle(it *inflight, err error) {
	w.mu.Lock()
	if it.state == msgAbandoned {
		w.mu.Unlock()
		w.log.Warn("job ended after the worker gave up on its message at shutdown; result ignored",
			"message_id", it.msg.ID, "error", err)
		return
	}
	wasLost := it.state == msgLost
	ev := evReturned
	if err != nil && w.cancelled {
		ev = evReturnedLate
	}
	it.on(ev)
	state := it.state
	w.mu.Unlock()
	switch {
	case wasLost:
		w.settleLost(it, err)
		return
	case state == msgDeferred:
		// Past the drain window: released with the others, at once and batched.
		w.stats.failed.Add(1)
		return
	}

	if err == nil {
		w.stats.succeeded.Add(1)
		w.enqueueDelete(it)
		return
	}
	w.stats.failed.Add(1)
	deadLetter, delay := outcomeDelay(err, w.cfg.ReleaseDelay)
	if deadLetter {
		w.deadLetter(it, err)
		return
	}
	// One line per event: a processor that asked for the release (a
	// *Released error) has logged why, with what it knows of the job, so
	// the worker's line is DEBUG then; any other error is the worker's
	// only record of the failure. retry_after, as the pipeline's release
	// line names the same delay; a time.Duration value, which the worker's
	// JSON handler writes as "30s".
	level := slog.LevelWarn
	if errors.As(err, new(*Released)) {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, "job failed; releasing the message", "message_id", it.msg.ID,
		"receive_count", it.msg.ReceiveCount, "retry_after", delay, "error", err)
	w.release(it, delay)
}

// settleLost ends a job that was cancelled because its message's visibility
// could not be extended. The message is visible again, or soon will be, and
// may already be another worker's: releasing or dead-lettering it now would
// act on a delivery that is no longer ours. Only a success is still worth a
// delete, since it spares the next delivery the work.
func (w *Worker) settleLost(it *inflight, err error) {
	if err == nil {
		w.stats.succeeded.Add(1)
		w.enqueueDelete(it)
		return
	}
	w.stats.failed.Add(1)
	w.log.Warn("job cancelled after losing its message ended; the message is left to its next delivery",
		"message_id", it.msg.ID, "receive_count", it.msg.ReceiveCount, "error", err)
	w.drop(it)
}
