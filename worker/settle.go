package worker

import (
	"context"
	"errors"
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
	if it.abandoned {
		w.mu.Unlock()
		w.log.Warn("job ended after its message was released at shutdown; result ignored",
			"message_id", it.msg.ID, "error", err)
		return
	}
	it.running = false
	if err != nil && w.cancelled {
		// Past the drain window: released with the others, at once and batched.
		it.stopRelease = true
		w.mu.Unlock()
		w.stats.failed.Add(1)
		return
	}
	w.mu.Unlock()

	if err == nil {
		w.stats.succeeded.Add(1)
		w.enqueueDelete(it)
		return
	}
	w.stats.failed.Add(1)
	if isDeadLetter(err) {
		w.deadLetter(it, err)
		return
	}
	delay := w.cfg.ReleaseDelay
	if d, ok := retryAfter(err); ok {
		delay = d
	}
	w.log.Warn("job failed; releasing the message", "message_id", it.msg.ID,
		"receive_count", it.msg.ReceiveCount, "retry_in", delay, "error", err)
	w.release(it, delay)
}

func isDeadLetter(err error) bool {
	var dl interface{ DeadLetter() bool }
	return errors.As(err, &dl) && dl.DeadLetter()
}

func retryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
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
	ok, failed := w.inBatches(items, func(ctx context.Context, batch []*inflight) (*batchResult, error) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
		for i, it := range batch {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(it.msg.receiptHandle), VisibilityTimeout: 0,
			}
		}
		out, err := w.q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(w.cfg.QueueURL), Entries: entries,
		})
		if err != nil {
			return nil, err
		}
		return changeResult(out), nil
	})
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
	// With fewer slots than a batch, a batch of Concurrency is all that can
	// come: every slot is waiting for this delete.
	full := len(w.pending) >= min(maxBatch, w.cfg.Concurrency)
	w.dmu.Unlock()
	if full {
		select {
		case w.deleteKick <- struct{}{}:
		default:
		}
	}
}

// deleteLoop flushes pending deletes when a batch is full, every
// DeleteFlushInterval, and once more when stop closes.
func (w *Worker) deleteLoop(stop <-chan struct{}) {
	t := time.NewTicker(w.cfg.DeleteFlushInterval)
	defer t.Stop()
	for {
		last := false
		select {
		case <-stop:
			last = true
		case <-t.C:
		case <-w.deleteKick:
		}
		w.dmu.Lock()
		batch := w.pending
		w.pending = nil
		w.deleterDone = last
		w.dmu.Unlock()
		w.deleteNow(batch)
		if last {
			return
		}
	}
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
		r := &batchResult{failed: map[string]string{}}
		for _, s := range out.Successful {
			r.ok = append(r.ok, aws.ToString(s.Id))
		}
		for _, f := range out.Failed {
			r.failed[aws.ToString(f.Id)] = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
		}
		return r, nil
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
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.heartbeat()
		}
	}
}

// heartbeat extends, by VisibilityTimeout, every running job that has used
// half of its current visibility. Near SQS's 12h limit it extends to the
// limit once and then stops, since SQS would reject anything more.
func (w *Worker) heartbeat() {
	w.visMu.Lock()
	defer w.visMu.Unlock()
	now := w.now()
	grant := map[*inflight]time.Duration{}
	var due []*inflight
	w.mu.Lock()
	for _, it := range w.held {
		if !it.running || it.capped || it.abandoned || now.Sub(it.extendedAt) < it.granted/2 {
			continue
		}
		d := w.cfg.VisibilityTimeout
		if left := (maxVisibility - capMargin - now.Sub(it.msg.ReceivedAt)).Truncate(time.Second); left < d {
			it.capped = true
			w.log.Warn("message nears SQS's 12h visibility limit; no more extensions, it will be redelivered if the job runs on",
				"message_id", it.msg.ID, "held_for", now.Sub(it.msg.ReceivedAt).Round(time.Second), "last_extension", max(left, 0))
			if left < time.Second {
				continue
			}
			d = left
		}
		grant[it] = d
		due = append(due, it)
	}
	w.mu.Unlock()
	if len(due) == 0 {
		return
	}
	ok, failed := w.inBatches(due, func(ctx context.Context, batch []*inflight) (*batchResult, error) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
		for i, it := range batch {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(it.msg.receiptHandle),
				VisibilityTimeout: int32(grant[it] / time.Second),
			}
		}
		out, err := w.q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(w.cfg.QueueURL), Entries: entries,
		})
		if err != nil {
			return nil, err
		}
		return changeResult(out), nil
	})
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
		if f.it.hbFailures >= maxHeartbeatFailures {
			f.it.capped = true
			w.log.Error("visibility extension keeps failing; giving up, the message may be redelivered",
				"message_id", f.it.msg.ID, "error", f.reason)
			continue
		}
		w.log.Warn("visibility extension failed", "message_id", f.it.msg.ID, "error", f.reason)
	}
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

func changeResult(out *sqs.ChangeMessageVisibilityBatchOutput) *batchResult {
	r := &batchResult{failed: map[string]string{}}
	for _, s := range out.Successful {
		r.ok = append(r.ok, aws.ToString(s.Id))
	}
	for _, f := range out.Failed {
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
