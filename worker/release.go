package worker

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

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
