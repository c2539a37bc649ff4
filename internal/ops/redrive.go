package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// DefaultRedriveBatch is how many dead letters one SendMessageBatch moves
// (SQS's maximum). A crash between a batch's send and its delete leaves at
// most this many messages in both queues.
const DefaultRedriveBatch = 10

// RedriveConfig says what tierq redrive moves.
type RedriveConfig struct {
	Queue    Queue
	DLQURL   string // read from
	QueueURL string // sent to
	// Reason selects dead letters (DeadLetter.Matches): "" all, a class
	// (no_reason, not_json, ...) or text the reason contains.
	Reason string
	// Max moves at most this many; 0 moves all that match.
	Max int
	// DryRun lists what would move and moves nothing.
	DryRun bool
	// Batch is how many messages move per send and delete, 1 to 10;
	// default DefaultRedriveBatch.
	Batch int
	// Hide is how long each dead letter received stays hidden; default
	// DefaultHide. Those not moved are made visible again at the end.
	Hide time.Duration
	// Progress receives a line per batch moved; nil for none.
	Progress io.Writer

	// Test hooks: afterMove is called with the running total after each
	// batch is moved; crashAfterSend, when it returns true, stops the run
	// right after a send and before its delete, as a killed process would.
	afterMove      func(moved int)
	crashAfterSend func() bool
}

// RedriveSummary is what a redrive did.
type RedriveSummary struct {
	// Moved were sent to the job queue and deleted from the dead-letter
	// queue.
	Moved int `json:"moved"`
	// WouldMove are, for a dry run, the dead letters that would move.
	WouldMove []*DeadLetter `json:"would_move,omitempty"`
	// Skipped did not match Reason, or were beyond Max.
	Skipped int `json:"skipped"`
	// Failed could not be sent; they stay in the dead-letter queue.
	Failed int `json:"failed"`
	// InBoth were sent but could not be deleted from the dead-letter
	// queue: a copy is in each queue, and the next redrive sends it again.
	// Harmless: the worker writes one result per job_id.
	InBoth int `json:"in_both"`
	// Interrupted is true when the context ended before the dead-letter
	// queue was exhausted; run again to move the rest.
	Interrupted bool `json:"interrupted"`
}

// ErrCrashed is what a run stopped by the crashAfterSend test hook returns.
var ErrCrashed = errors.New("redrive stopped between a send and its delete (simulated crash)")

// Redrive moves dead letters back to the job queue: each batch is first
// sent (body byte for byte, message attributes without the dead-letter
// bookkeeping) and only then deleted from the dead-letter queue, so no
// message is ever lost. Ctrl-C (ctx ending) never splits a batch: the
// batch in hand is sent and deleted under a context of its own, then the
// run stops and makes what it received but did not move visible again.
// Only a process killed between a send and its delete leaves a batch in
// both queues; that copy is sent again by the next redrive, and the worker
// answers the second delivery of a job from its existing result (one
// result and one model call per job_id), so it costs one HeadObject.
//
// API calls: one ReceiveMessage per 10 dead letters read (plus one or two
// that come back empty), one SendMessageBatch and one DeleteMessageBatch
// per batch moved, one ChangeMessageVisibilityBatch per 10 not moved.
func Redrive(ctx context.Context, c RedriveConfig) (RedriveSummary, error) {
	var s RedriveSummary
	if c.Batch <= 0 || c.Batch > 10 {
		c.Batch = DefaultRedriveBatch
	}
	if c.Hide <= 0 {
		c.Hide = DefaultHide
	}
	if c.QueueURL == c.DLQURL {
		return s, errors.New("the job queue and the dead-letter queue are the same queue")
	}
	a, err := readQueueAttrs(ctx, c.Queue, c.DLQURL)
	if err != nil {
		return s, err
	}
	if a.redrivePolicy != "" {
		return s, errDLQRedrivePolicy(c.DLQURL, a.redrivePolicy)
	}
	r := newDLQReader(c.Queue, c.DLQURL, c.Hide)
	r.keepBodies = !c.DryRun
	var keep []*DeadLetter // received, not moved: made visible again at the end
	runErr := func() error {
		for {
			if c.Max > 0 && s.Moved+len(s.WouldMove) >= c.Max {
				return nil
			}
			if ctx.Err() != nil {
				s.Interrupted = true
				return nil
			}
			got, err := r.next(ctx)
			if err != nil {
				if ctx.Err() != nil {
					s.Interrupted = true
					return nil
				}
				return err
			}
			if len(got) == 0 {
				return nil
			}
			var move []*DeadLetter
			for _, d := range got {
				switch {
				case !d.Matches(c.Reason), c.Max > 0 && s.Moved+len(s.WouldMove)+len(move) >= c.Max:
					s.Skipped++
					d.body, d.attrs = "", nil // only its receipt is needed now
					keep = append(keep, d)
				default:
					move = append(move, d)
				}
			}
			if c.DryRun {
				s.WouldMove = append(s.WouldMove, move...)
				keep = append(keep, move...)
				continue
			}
			for start := 0; start < len(move); start += c.Batch {
				if ctx.Err() != nil {
					s.Interrupted = true
					keep = append(keep, move[start:]...)
					return nil
				}
				batch := move[start:min(start+c.Batch, len(move))]
				failed, err := c.moveBatch(ctx, batch, &s)
				for _, d := range batch {
					d.body, d.attrs = "", nil // sent or not, a later pass receives it anew
				}
				keep = append(keep, failed...)
				if err != nil {
					keep = append(keep, move[start+len(batch):]...)
					return err
				}
			}
		}
	}()
	if errors.Is(runErr, ErrCrashed) {
		return s, runErr // a killed process releases nothing
	}
	relErr := release(ctx, c.Queue, c.DLQURL, keep)
	return s, errors.Join(runErr, relErr)
}

// moveBatch sends a batch to the job queue, then deletes what was sent
// from the dead-letter queue. It returns the dead letters that were not
// sent (to be made visible again). Both calls run under a context that
// ignores ctx's cancellation, so an interrupt never falls between them.
func (c *RedriveConfig) moveBatch(ctx context.Context, batch []*DeadLetter, s *RedriveSummary) ([]*DeadLetter, error) {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	entries := make([]types.SendMessageBatchRequestEntry, len(batch))
	for i, d := range batch {
		entries[i] = types.SendMessageBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			MessageBody:       aws.String(d.body),
			MessageAttributes: redriveAttributes(d.attrs),
		}
	}
	out, err := c.Queue.SendMessageBatch(mctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(c.QueueURL), Entries: entries})
	if err != nil {
		s.Failed += len(batch)
		return batch, fmt.Errorf("send to the job queue %s: %w", c.QueueURL, err)
	}
	var notSent []*DeadLetter
	for _, f := range out.Failed {
		if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(batch) {
			notSent = append(notSent, batch[i])
			s.Failed++
			c.note("redrive: could not send message %s: %s: %s", batch[i].MessageID, aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	var del []types.DeleteMessageBatchRequestEntry
	sent := map[string]*DeadLetter{}
	for _, ok := range out.Successful {
		i, err := strconv.Atoi(aws.ToString(ok.Id))
		if err != nil || i < 0 || i >= len(batch) {
			continue
		}
		sent[aws.ToString(ok.Id)] = batch[i]
		del = append(del, types.DeleteMessageBatchRequestEntry{Id: ok.Id, ReceiptHandle: aws.String(batch[i].receipt)})
	}
	if c.crashAfterSend != nil && c.crashAfterSend() {
		return nil, ErrCrashed
	}
	if len(del) == 0 {
		return notSent, nil
	}
	dout, err := c.Queue.DeleteMessageBatch(mctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.DLQURL), Entries: del})
	if err != nil {
		// Sent but still in the dead-letter queue, hidden until the hide
		// ends: not released now, so this run does not send them twice.
		s.InBoth += len(del)
		c.note("redrive: %d messages were sent but not deleted from the dead-letter queue (%v); the next redrive sends them again, and the worker answers the copy from the existing result", len(del), err)
		return notSent, nil
	}
	s.InBoth += len(dout.Failed)
	s.Moved += len(dout.Successful)
	for _, f := range dout.Failed {
		id := "?"
		if d := sent[aws.ToString(f.Id)]; d != nil {
			id = d.MessageID
		}
		c.note("redrive: message %s was sent but not deleted from the dead-letter queue: %s", id, aws.ToString(f.Message))
	}
	c.note("redrive: moved %d", s.Moved)
	if c.afterMove != nil {
		c.afterMove(s.Moved)
	}
	return notSent, nil
}

func (c *RedriveConfig) note(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}
