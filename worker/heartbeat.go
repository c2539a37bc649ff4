package worker

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// heartbeatLoop extends running jobs' visibility until stop closes.
func (w *Worker) heartbeatLoop(stop <-chan struct{}) {
	ticks := w.heartbeatTicks
	if ticks == nil {
		c, stopTicks := w.timers.Every(w.cfg.HeartbeatInterval)
		defer stopTicks()
		ticks = c
	}
	for {
		select {
		case <-stop:
			return
		case <-ticks:
			w.heartbeat()
		}
	}
}

// heartbeat extends, by VisibilityTimeout, every running job that has used
// half of its current visibility, and every succeeded job's message that
// still waits for its delete. Near SQS's 12h limit it extends to the
// limit once. A job whose visibility cannot be extended any more (the limit
// reached, or maxHeartbeatFailures extensions in a row failed) is cancelled:
// its message is about to be another worker's, and letting the job run on
// would pay for the model twice.
func (w *Worker) heartbeat() {
	w.visMu.Lock()
	defer w.visMu.Unlock()
	now := w.now()
	grant := map[*inflight]time.Duration{}
	var due []*inflight
	w.mu.Lock()
	for _, it := range w.held {
		if (it.state != msgRunning && !it.deleting) || now.Sub(it.extendedAt) < it.granted/2 {
			continue
		}
		held := now.Sub(it.msg.ReceivedAt).Round(time.Second)
		if it.capped {
			w.loseLocked(it, "the last extension SQS's 12h visibility limit allows is half used", "held_for", held)
			continue
		}
		d := w.cfg.VisibilityTimeout
		if left := (maxVisibility - capMargin - now.Sub(it.msg.ReceivedAt)).Truncate(time.Second); left < d {
			if left < time.Second {
				w.loseLocked(it, "the message reached SQS's 12h visibility limit", "held_for", held)
				continue
			}
			it.capped = true
			w.log.Warn("message nears SQS's 12h visibility limit; last extension, the job is cancelled if it runs on",
				"message_id", it.msg.ID, "held_for", held, "last_extension", left)
			d = left
		}
		grant[it] = d
		due = append(due, it)
	}
	w.mu.Unlock()
	if len(due) == 0 {
		return
	}
	ok, failed := w.changeVisibility(due, func(it *inflight) int32 { return int32(grant[it] / time.Second) })
	w.stats.heartbeats.Add(int64(len(ok)))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range ok {
		// The clock restarted when the call was made, not when it returned;
		// counting from before the call errs on the early side.
		it.extendedAt, it.granted, it.hbFailures = now, grant[it], 0
	}
	for _, f := range failed {
		f.it.hbFailures++
		if f.it.hbFailures < maxHeartbeatFailures {
			w.log.Warn("visibility extension failed", "message_id", f.it.msg.ID, "error", f.reason)
			continue
		}
		// A job that ended during the call has settled its message already,
		// and one lost already is not lost again.
		if f.it.state == msgRunning {
			w.loseLocked(f.it, "visibility extensions keep failing", "failures", f.it.hbFailures, "error", f.reason)
		}
	}
}

// loseLocked gives up a running job's message: its visibility cannot be
// extended, so the job is cancelled, and settle will neither release nor
// dead-letter the message (see settleLost). The caller holds w.mu.
func (w *Worker) loseLocked(it *inflight, why string, args ...any) {
	if !it.on(evLost) {
		return
	}
	it.cancel()
	w.stats.lost.Add(1)
	w.log.Warn("cannot keep the message invisible; cancelling the job, the message will be redelivered",
		append([]any{"message_id", it.msg.ID, "receive_count", it.msg.ReceiveCount, "reason", why}, args...)...)
}

// changeVisibility sets each item's visibility to secs(item) seconds with
// ChangeMessageVisibilityBatch (see inBatches).
func (w *Worker) changeVisibility(items []*inflight, secs func(*inflight) int32) (ok []*inflight, failed []batchFailure) {
	return w.inBatches(items, func(ctx context.Context, batch []*inflight) (*batchResult, error) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
		for i, it := range batch {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(it.msg.receiptHandle), VisibilityTimeout: secs(it),
			}
		}
		out, err := w.q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(w.cfg.QueueURL), Entries: entries,
		})
		if err != nil {
			return nil, err
		}
		return newBatchResult(out.Successful, func(e types.ChangeMessageVisibilityBatchResultEntry) *string { return e.Id }, out.Failed), nil
	})
}
