package submit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sethvargo/go-retry"
	"github.com/tierq/tierq/internal/awserr"
)

// ErrQueueUnusable: SQS refused a batch in a way no other batch can avoid
// (missing queue, no permission), so the run stops.
var ErrQueueUnusable = errors.New("queue unusable")

// DefaultBackoff is the wait between attempts at a batch's failed entries:
// exponential from 200 ms, capped at 5 s, with full jitter so that many
// submitters do not retry in step.
func DefaultBackoff() retry.Backoff {
	return retry.WithFullJitter(retry.WithCappedDuration(5*time.Second, retry.NewExponential(200*time.Millisecond)))
}

// batcher groups messages into SendMessageBatch calls of at most
// MaxBatchEntries entries and MaxBatchBytes in total, and sends them.
type batcher struct {
	queue       Queue
	queueURL    string
	maxAttempts int
	backoff     func() retry.Backoff

	batch []message
	bytes int

	sent   func(message)
	failed func(message, error)
}

// add queues m, first sending the current batch if m would not fit in it.
// It returns an error only when the run must stop.
func (b *batcher) add(ctx context.Context, m message) error {
	if len(b.batch) == MaxBatchEntries || b.bytes+m.size() > MaxBatchBytes {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	b.batch = append(b.batch, m)
	b.bytes += m.size()
	return nil
}

// flush sends the current batch. Entries SQS reports as failed through no
// fault of the sender (throttling, internal errors) are sent again with
// backoff, up to maxAttempts; every entry ends up reported to sent or
// failed, never dropped. It returns an error only when the run must stop
// (ErrQueueUnusable or the context's error); the batch's unsent entries are
// then reported as failed.
func (b *batcher) flush(ctx context.Context) error {
	batch := b.batch
	b.batch, b.bytes = nil, 0
	if len(batch) == 0 {
		return nil
	}
	// Entry ids are indexes into batch, stable across attempts.
	pending := make(map[int]error, len(batch))
	for i := range batch {
		pending[i] = errors.New("not sent")
	}
	var stop error
	attempt := func(ctx context.Context) error {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(b.queueURL)}
		for _, i := range slices.Sorted(maps.Keys(pending)) {
			in.Entries = append(in.Entries, batch[i].entry(strconv.Itoa(i)))
		}
		out, err := b.queue.SendMessageBatch(ctx, in)
		if err != nil {
			err = fmt.Errorf("send message batch: %w", err)
			for i := range pending {
				pending[i] = err
			}
			switch {
			case ctx.Err() != nil:
				stop = context.Cause(ctx)
				return err
			case queueUnusable(err):
				stop = fmt.Errorf("%w: %w", ErrQueueUnusable, err)
				return err
			case awserr.ClientFault(err):
				return err // this request cannot succeed; other batches may
			}
			// The SDK has already retried; a few more attempts with a
			// longer backoff ride out a short outage.
			return retry.RetryableError(err)
		}
		for _, s := range out.Successful {
			if i, ok := entryIndex(s.Id, pending); ok {
				delete(pending, i)
				b.sent(batch[i])
			}
		}
		for _, f := range out.Failed {
			i, ok := entryIndex(f.Id, pending)
			if !ok {
				continue
			}
			err := fmt.Errorf("SQS refused the message: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			if unusableCode(aws.ToString(f.Code)) {
				// Emulators report a missing queue per entry rather than
				// for the request; either way no later batch can succeed.
				stop = fmt.Errorf("%w: %w", ErrQueueUnusable, err)
			}
			if f.SenderFault || stop != nil {
				// The message itself is wrong; sending it again cannot help.
				delete(pending, i)
				b.failed(batch[i], err)
				continue
			}
			pending[i] = err
		}
		if stop != nil {
			return stop
		}
		// An entry in neither list is resent too. That may duplicate a
		// message SQS did store, which is safe because a job ID gets one
		// result; losing it would not be.
		if len(pending) > 0 {
			return retry.RetryableError(fmt.Errorf("%d of %d entries not accepted", len(pending), len(batch)))
		}
		return nil
	}
	_ = retry.Do(ctx, retry.WithMaxRetries(uint64(b.maxAttempts-1), b.backoff()), attempt)
	if stop == nil && ctx.Err() != nil {
		stop = context.Cause(ctx)
	}
	for _, i := range slices.Sorted(maps.Keys(pending)) {
		err := pending[i]
		if stop != nil && ctx.Err() != nil {
			err = fmt.Errorf("not sent: %w", stop)
		}
		b.failed(batch[i], err)
	}
	return stop
}

func entryIndex(id *string, pending map[int]error) (int, bool) {
	i, err := strconv.Atoi(aws.ToString(id))
	if err != nil {
		return 0, false
	}
	_, ok := pending[i]
	return i, ok
}

// queueCodes are SQS's codes (besides a missing queue and access denied)
// meaning no batch can succeed until someone fixes the queue (its address,
// HTTPS requirement or KMS key) or the credentials. Credentials that merely
// expired or a skewed clock are left out: the SDK recovers from those.
var queueCodes = []string{
	"InvalidAddress", "InvalidSecurity", "KmsAccessDenied", "KmsDisabled", "KmsNotFound", "KmsInvalidState",
	"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
}

// queueUnusable reports an error after which no batch can succeed until
// someone fixes the queue or the credentials.
func queueUnusable(err error) bool { return unusableCode(awserr.Code(err)) || awserr.AccessDenied(err) }

// unusableCode is queueUnusable for an error code alone, as one entry of a
// batch answer carries it.
func unusableCode(code string) bool {
	return awserr.MissingQueueCode(code) || awserr.AccessDeniedCode(code) || slices.Contains(queueCodes, code)
}
