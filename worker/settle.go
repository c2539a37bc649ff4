package worker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Message attributes set on a dead-lettered copy.
const (
	AttrDeadLetterReason = "tierq-dead-letter-reason"
	AttrSourceMessageID  = "tierq-source-message-id"
	AttrReceiveCount     = "tierq-receive-count"
)

// maxMessageAttributes is SQS's limit per message.
const maxMessageAttributes = 10

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
	w.log.Warn("job failed; releasing the message", "message_id", it.msg.ID,
		"receive_count", it.msg.ReceiveCount, "retry_in", delay, "error", err)
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

// visibilitySeconds turns a wanted delay into a ChangeMessageVisibility
// value SQS accepts: whole seconds (rounded up, so a retry never comes
// early), at least 0, and within 12h of the receive.
func visibilitySeconds(d, sinceReceive time.Duration) int32 {
	d = min(d, maxVisibility-capMargin-sinceReceive)
	if d <= 0 {
		return 0
	}
	return int32((d + time.Second - 1) / time.Second)
}

// release makes the message visible again after delay.
func (w *Worker) release(it *inflight, delay time.Duration) {
	defer w.drop(it)
	secs := visibilitySeconds(delay, w.now().Sub(it.msg.ReceivedAt))
	ctx, cancel := w.callCtx()
	defer cancel()
	w.visMu.Lock()
	_, err := w.q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(w.cfg.QueueURL),
		ReceiptHandle:     aws.String(it.msg.receiptHandle),
		VisibilityTimeout: secs,
	})
	w.visMu.Unlock()
	if err != nil {
		w.log.Warn("release failed; the message reappears when its visibility runs out",
			"message_id", it.msg.ID, "error", err)
		return
	}
	w.stats.released.Add(1)
}

// releaseNow makes messages visible at once, in batches.
func (w *Worker) releaseNow(items []*inflight) {
	if len(items) == 0 {
		return
	}
	w.visMu.Lock()
	ok, failed := w.changeVisibility(items, func(*inflight) int32 { return 0 })
	w.visMu.Unlock()
	w.stats.released.Add(int64(len(ok)))
	for _, f := range failed {
		w.log.Warn("release failed; the message reappears when its visibility runs out",
			"message_id", f.it.msg.ID, "error", f.reason)
	}
	for _, it := range items {
		w.drop(it)
	}
}

// deadLetter copies the message to the dead-letter queue and deletes the
// original; if the copy fails the message is released instead, so it is
// never lost.
func (w *Worker) deadLetter(it *inflight, cause error) {
	reason := deadLetterReason(cause)
	ctx, cancel := w.callCtx()
	defer cancel()
	_, err := w.q.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(w.cfg.DeadLetterQueueURL),
		MessageBody:       it.raw.Body,
		MessageAttributes: deadLetterAttributes(it.raw.MessageAttributes, reason, it.msg.ID, it.msg.ReceiveCount),
	})
	if err != nil {
		w.log.Error("dead-letter send failed; releasing the message instead", "message_id", it.msg.ID,
			"reason", reason, "error", err)
		w.release(it, w.cfg.ReleaseDelay)
		return
	}
	w.stats.deadLettered.Add(1)
	w.log.Warn("message dead-lettered", "message_id", it.msg.ID, "receive_count", it.msg.ReceiveCount, "reason", reason)
	w.enqueueDelete(it)
}

// deadLetterReason is err's text as an SQS attribute value: characters SQS
// rejects replaced, at most maxReasonChars characters, never empty.
func deadLetterReason(err error) string {
	s := strings.Map(func(r rune) rune {
		if validAttributeRune(r) {
			return r
		}
		return utf8.RuneError
	}, strings.ToValidUTF8(err.Error(), string(utf8.RuneError)))
	if utf8.RuneCountInString(s) > maxReasonChars {
		s = string([]rune(s)[:maxReasonChars])
	}
	if s == "" {
		s = "unknown"
	}
	return s
}

// validAttributeRune reports whether SQS accepts r in an attribute value:
// #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
func validAttributeRune(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r':
		return true
	case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// deadLetterAttributes keeps as many of the original attributes as fit
// beside the three of ours (SQS allows ten), in name order.
func deadLetterAttributes(orig map[string]types.MessageAttributeValue, reason, id string, receiveCount int) map[string]types.MessageAttributeValue {
	ours := map[string]types.MessageAttributeValue{
		AttrDeadLetterReason: {DataType: aws.String("String"), StringValue: aws.String(reason)},
		AttrReceiveCount:     {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(receiveCount))},
	}
	if id != "" {
		ours[AttrSourceMessageID] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(id)}
	}
	names := make([]string, 0, len(orig))
	for name := range orig {
		if _, clash := ours[name]; !clash && name != AttrSourceMessageID {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	attrs := make(map[string]types.MessageAttributeValue, maxMessageAttributes)
	for _, name := range names[:min(len(names), maxMessageAttributes-len(ours))] {
		attrs[name] = orig[name]
	}
	for name, v := range ours {
		attrs[name] = v
	}
	return attrs
}

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
	if full {
		select {
		case w.deleteKick <- struct{}{}:
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
	t := time.NewTicker(w.cfg.DeleteFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			w.deleteNow(w.takeDeletes(false, true))
			return
		case <-t.C:
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

// heartbeatLoop extends running jobs' visibility until stop closes.
func (w *Worker) heartbeatLoop(stop <-chan struct{}) {
	ticks := w.heartbeatTicks
	if ticks == nil {
		t := time.NewTicker(w.cfg.HeartbeatInterval)
		defer t.Stop()
		ticks = t.C
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
// half of its current visibility. Near SQS's 12h limit it extends to the
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
		if it.state != msgRunning || now.Sub(it.extendedAt) < it.granted/2 {
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

// batchResult is the per-entry outcome of one batch call, by entry Id.
type batchResult struct {
	ok     []string
	failed map[string]string
}

type batchFailure struct {
	it     *inflight
	reason string
}

// newBatchResult reads a batch answer: the Ids of its successful entries
// (whose type differs per API, hence id) and the reasons of its failed ones.
func newBatchResult[S any](successful []S, id func(S) *string, failed []types.BatchResultErrorEntry) *batchResult {
	r := &batchResult{failed: map[string]string{}}
	for _, s := range successful {
		r.ok = append(r.ok, aws.ToString(id(s)))
	}
	for _, f := range failed {
		r.failed[aws.ToString(f.Id)] = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
	}
	return r
}

// inBatches runs call over items in batches of ten (entry Id = index in the
// batch) and retries the failed entries once.
func (w *Worker) inBatches(items []*inflight, call func(context.Context, []*inflight) (*batchResult, error)) (ok []*inflight, failed []batchFailure) {
	attempt := func(items []*inflight) {
		failed = nil
		for batch := range slices.Chunk(items, maxBatch) {
			ctx, cancel := w.callCtx()
			r, err := call(ctx, batch)
			cancel()
			if err != nil {
				for _, it := range batch {
					failed = append(failed, batchFailure{it, err.Error()})
				}
				continue
			}
			succeeded := map[string]bool{}
			for _, id := range r.ok {
				succeeded[id] = true
			}
			for i, it := range batch {
				id := strconv.Itoa(i)
				switch {
				case succeeded[id]:
					ok = append(ok, it)
				case r.failed[id] != "":
					failed = append(failed, batchFailure{it, r.failed[id]})
				default:
					failed = append(failed, batchFailure{it, "entry missing from the response"})
				}
			}
		}
	}
	attempt(items)
	if len(failed) > 0 {
		retry := make([]*inflight, len(failed))
		for i, f := range failed {
			retry[i] = f.it
		}
		attempt(retry)
	}
	return ok, failed
}
