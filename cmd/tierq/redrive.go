package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tierq/tierq/internal/ops"
)

func runRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tierq redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s opsSettings
	s.queueFlags(fs)
	reason := fs.String("reason", "", "move only dead letters of this `CLASS` (not_json, unsupported_version, invalid_job_id, no_reason, other) or whose reason contains this text, ignoring case")
	maxN := fs.Int("max", 0, "move at most `N` dead letters (0: all that match)")
	dryRun := fs.Bool("dry-run", false, "list what would move (message ID, job ID, reason) and move nothing")
	batch := fs.Int("batch", ops.DefaultRedriveBatch, "messages per send and delete, 1 to 10: a process killed between the two leaves at most this many in both queues")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq redrive [flags]

Moves dead letters back to the job queue: all of them, or those of one
--reason, at most --max. Each batch is sent to the job queue first (the body
byte for byte, with its message attributes except the worker's dead-letter
bookkeeping: tierq-dead-letter-reason, tierq-source-message-id,
tierq-receive-count) and only then deleted from the dead-letter queue, so a
message is never lost. Ctrl-C finishes the batch in hand and stops: every
message is then in exactly one queue. A process killed between a send and its
delete leaves that batch in both queues; the next redrive sends it again, and
that is harmless: the worker writes one result per job_id and answers a
job's later deliveries from it (one HeadObject, no model call).

Dead letters with a tierq reason are messages that are not jobs: they come
back unless the worker has changed. no_reason dead letters were moved by the
job queue's redrive policy (a job released maxReceiveCount times: throttling,
an outage): those are the ones to redrive once the cause is fixed.

Progress goes to stderr, the summary (moved, skipped, failed) to stdout.
Messages received but not moved are made visible again at the end; each
read adds one to its ApproximateReceiveCount (--dry-run included).

What it costs: per 10 dead letters read, one ReceiveMessage; per batch moved,
one SendMessageBatch and one DeleteMessageBatch; per 10 not moved, one
ChangeMessageVisibilityBatch; 1 GetQueueAttributes.

Environment: TIERQ_QUEUE_URL, TIERQ_DLQ_URL (flags override them); AWS
credentials, AWS_REGION and AWS_ENDPOINT_URL* come from the AWS SDK's usual
sources.

flags:
`)
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args, ""); err != nil {
		return err
	}
	errs := []error{
		required(s.queueURL, "queue-url", "TIERQ_QUEUE_URL"),
		required(s.dlqURL, "dlq-url", "TIERQ_DLQ_URL"),
	}
	if *maxN < 0 {
		errs = append(errs, fmt.Errorf("--max %d: want 0 (all) or more", *maxN))
	}
	if *batch < 1 || *batch > 10 {
		errs = append(errs, fmt.Errorf("--batch %d: want 1 to 10", *batch))
	}
	if s.queueURL != "" && s.queueURL == s.dlqURL {
		errs = append(errs, errors.New("--queue-url and --dlq-url are the same queue"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid options:\n%w", err)
	}
	clients, err := newAWSClients(ctx, awsSettings{})
	if err != nil {
		return err
	}
	sum, err := ops.Redrive(ctx, ops.RedriveConfig{
		Queue: clients.SQS, DLQURL: s.dlqURL, QueueURL: s.queueURL,
		Reason: *reason, Max: *maxN, DryRun: *dryRun, Batch: *batch, Progress: stderr,
	})
	if werr := ops.WriteRedrive(stdout, sum, *dryRun, opsNow()); err == nil {
		err = werr
	}
	switch {
	case err != nil:
		return err
	case sum.Interrupted:
		return errors.New("interrupted; run it again to move the rest")
	case sum.Failed > 0:
		return fmt.Errorf("%d dead letters could not be sent; they are still in the dead-letter queue", sum.Failed)
	}
	return nil
}
