package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/emulator"
)

// endpoint is the kumo server every integration test talks to. All kumo
// instances share one storage anyway, so tests isolate by queue name.
var endpoint string

func TestMain(m *testing.M) { os.Exit(emulator.RunTests(m, &endpoint)) }

// newQueues creates a uniquely named queue and its DLQ, with a redrive
// policy (maxReceiveCount 5) as production would have.
func newQueues(t *testing.T, c *sqs.Client) (queueURL, dlqURL string) {
	t.Helper()
	ctx := context.Background()
	name := emulator.Name(t, "")

	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatalf("create DLQ: %v", err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("get DLQ ARN: %v", err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"5"}`, attrs.Attributes["QueueArn"])
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: map[string]string{"RedrivePolicy": redrive},
	})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl})
		_, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: dlq.QueueUrl})
	})
	return *q.QueueUrl, *dlq.QueueUrl
}

func send(t *testing.T, c *sqs.Client, url string, bodies ...string) []string {
	t.Helper()
	ids := make([]string, len(bodies))
	for i, b := range bodies {
		out, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)})
		if err != nil {
			t.Fatalf("send %q: %v", b, err)
		}
		ids[i] = *out.MessageId
	}
	return ids
}

// queueCount receives once (so kumo requeues expired messages), then
// returns visible + not-visible messages.
func queueCount(t *testing.T, c *sqs.Client, url string) int {
	t.Helper()
	ctx := context.Background()
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 0, VisibilityTimeout: 30})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(out.Messages) > 0 {
		t.Errorf("queue still had a receivable message: %q", aws.ToString(out.Messages[0].Body))
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	}})
	if err != nil {
		t.Fatalf("get queue attributes: %v", err)
	}
	visible, _ := strconv.Atoi(attrs.Attributes["ApproximateNumberOfMessages"])
	hidden, _ := strconv.Atoi(attrs.Attributes["ApproximateNumberOfMessagesNotVisible"])
	return visible + hidden
}

// watch lets a test wait, without polling, for a condition over state that
// is guarded by mu and announced with changedLocked.
type watch struct {
	mu sync.Mutex
	ch chan struct{}
}

// changedLocked wakes the waiters; the caller holds mu.
func (w *watch) changedLocked() {
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// until waits up to timeout for cond, which runs with w.mu held.
func (w *watch) until(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		if cond() {
			w.mu.Unlock()
			return
		}
		if w.ch == nil {
			w.ch = make(chan struct{})
		}
		ch := w.ch
		w.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// recorder wraps a Queue and keeps count of what the worker did with the
// messages it received, by receipt handle, from the successful entries of
// each answer.
type recorder struct {
	Queue
	watch
	held        map[string]string // receipt handle → message ID, received and not settled
	maxHeld     int
	receives    int
	maxAsked    int32
	deleted     []string // message IDs
	released    int      // set visible again (single calls and visibility-0 batch entries)
	releasedAt0 int      // of which batch entries with visibility 0 (shutdown)
	heartbeats  int
	dlqSends    int
}

func newRecorder(q Queue) *recorder { return &recorder{Queue: q, held: map[string]string{}} }

func (r *recorder) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	r.mu.Lock()
	r.receives++
	r.maxAsked = max(r.maxAsked, in.MaxNumberOfMessages)
	r.changedLocked()
	r.mu.Unlock()
	out, err := r.Queue.ReceiveMessage(ctx, in, o...)
	if err != nil {
		return out, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range out.Messages {
		r.held[*m.ReceiptHandle] = *m.MessageId
	}
	r.maxHeld = max(r.maxHeld, len(r.held))
	r.changedLocked()
	return out, nil
}

func (r *recorder) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out, err := r.Queue.DeleteMessageBatch(ctx, in, o...)
	if err != nil {
		return out, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range out.Successful {
		for _, e := range in.Entries {
			if *e.Id == *s.Id {
				r.deleted = append(r.deleted, r.held[*e.ReceiptHandle])
				delete(r.held, *e.ReceiptHandle)
			}
		}
	}
	r.changedLocked()
	return out, nil
}

func (r *recorder) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	out, err := r.Queue.ChangeMessageVisibility(ctx, in, o...)
	if err != nil {
		return out, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released++
	delete(r.held, *in.ReceiptHandle)
	r.changedLocked()
	return out, nil
}

func (r *recorder) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	out, err := r.Queue.ChangeMessageVisibilityBatch(ctx, in, o...)
	if err != nil {
		return out, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range out.Successful {
		for _, e := range in.Entries {
			if *e.Id != *s.Id {
				continue
			}
			if e.VisibilityTimeout == 0 {
				r.released++
				r.releasedAt0++
				delete(r.held, *e.ReceiptHandle)
			} else {
				r.heartbeats++
			}
		}
	}
	r.changedLocked()
	return out, nil
}

func (r *recorder) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	out, err := r.Queue.SendMessage(ctx, in, o...)
	if err == nil {
		r.mu.Lock()
		r.dlqSends++
		r.changedLocked()
		r.mu.Unlock()
	}
	return out, err
}

// run starts w.Run and returns a function that cancels it and returns its
// error; it fails the test if Run does not return within limit.
func run(t *testing.T, w *Worker, limit time.Duration) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(limit):
				err = fmt.Errorf("Run did not return within %v of cancellation", limit)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testConfig is the configuration integration tests start from.
func testConfig(queueURL, dlqURL string) Config {
	return Config{QueueURL: queueURL, DeadLetterQueueURL: dlqURL, WaitTime: time.Second}
}

// poison is the outcome of a message that can never succeed.
func poison(reason string) error { return DeadLetter(errors.New(reason)) }
