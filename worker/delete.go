package worker

import (
	"context"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// enqueueDelete queues a finished message for the next DeleteMessageBatch.
func (w *Worker) enqueueDelete(it *inflight) {
	w.dmu.Lock()
	if w.deleterDone {
		w.dmu.Unlock()
		// Only a job abandoned at shutdown gets here; the redelivery is safe.
		w.log.Warn("worker stopped before the delete; the message will be redelivered", "message_id", it.msg.ID)
		w.drop(it)
		return
	}
	w.pending = append(w.pending, it)
	full := len(w.pending) >= w.deleteBatchSize()
	w.dmu.Unlock()
	w.freeSlot(it)
	if full {
		select {
		case w.deleteKick <- struct{}{}:
		default:
		}
	}
}

// freeSlot lets a succeeded job's slot take the next message while its own
// waits for the delete (see room); the heartbeat keeps it invisible until
// then.
func (w *Worker) freeSlot(it *inflight) {
	w.mu.Lock()
	_, held := w.held[it.msg.receiptHandle]
	if held && !it.deleting {
		it.deleting = true
		w.deleting++
	}
	w.mu.Unlock()
	if held {
		select {
		case w.slotFreed <- struct{}{}:
		default:
		}
	}
}

// deleteBatchSize is the size of a full delete batch. With fewer slots than
// SQS's batch limit, Concurrency is all that can come: every slot is then
// waiting for this delete.
func (w *Worker) deleteBatchSize() int { return min(maxBatch, w.cfg.Concurrency) }

// deleteLoop flushes full batches of pending deletes as soon as they fill,
// everything pending every DeleteFlushInterval (so no delete waits longer
// than that, plus the call in progress), and everything once more when stop
// closes.
func (w *Worker) deleteLoop(stop <-chan struct{}) {
	ticks, stopTicks := w.timers.Every(w.cfg.DeleteFlushInterval)
	defer stopTicks()
	for {
		select {
		case <-stop:
			w.deleteNow(w.takeDeletes(false, true))
			return
		case <-ticks:
			w.deleteNow(w.takeDeletes(false, false))
		case <-w.deleteKick:
			// A kick can be stale: sent while the previous flush was taking
			// the batch it announced. Taking only whole batches keeps it from
			// sending the few deletes pending now as a batch of their own;
			// they wait for a full batch or the next tick.
			w.deleteNow(w.takeDeletes(true, false))
		}
	}
}

// takeDeletes removes and returns the pending deletes: all of them, or with
// wholeBatches only as many as fill whole batches. last marks the deleter
// done in the same critical section, so no delete is queued after the final
// flush.
func (w *Worker) takeDeletes(wholeBatches, last bool) []*inflight {
	w.dmu.Lock()
	defer w.dmu.Unlock()
	if last {
		w.deleterDone = true
	}
	n := len(w.pending)
	if wholeBatches {
		n -= n % w.deleteBatchSize()
	}
	if n == 0 {
		return nil
	}
	taken := w.pending[:n:n]
	w.pending = slices.Clone(w.pending[n:])
	return taken
}

// deleteNow deletes messages in batches, retrying failed entries once. A
// message that still fails is logged and redelivered later, which the
// pipeline's exactly-once result write makes harmless.
func (w *Worker) deleteNow(items []*inflight) {
	if len(items) == 0 {
		return
	}
	ok, failed := w.inBatches(items, func(ctx context.Context, batch []*inflight) (*batchResult, error) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
		for i, it := range batch {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(it.msg.receiptHandle)}
		}
		out, err := w.q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(w.cfg.QueueURL), Entries: entries})
		if err != nil {
			return nil, err
		}
		return newBatchResult(out.Successful, func(e types.DeleteMessageBatchResultEntry) *string { return e.Id }, out.Failed), nil
	})
	w.stats.deleted.Add(int64(len(ok)))
	for _, f := range failed {
		w.log.Warn("delete failed; the message will be redelivered", "message_id", f.it.msg.ID, "error", f.reason)
	}
	for _, it := range items {
		w.drop(it)
	}
}
