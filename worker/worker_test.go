package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/internal/emulator"
)

// Integration tests: the real SQS client against kumo, each test on its own
// queues. Timings lean on kumo's real visibility clock only where the
// behaviour under test is that clock.

func TestHappyPath(t *testing.T) {
	t.Parallel()
	c := emulator.SQS(endpoint)
	url, dlq := newQueues(t, c)
	const n, slots = 25, 4
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("job-%02d", i)
	}
	ids := send(t, c, url, bodies...)

	var (
		mu        sync.Mutex
		seen      = map[string]int{}
		gotBodies = map[string]bool{}
		active    atomic.Int32
		maxActive atomic.Int32
		first     sync.Once
		allBusy   = make(chan struct{})
		busyOnce  sync.Once
	)
	p := ProcessorFunc(func(ctx context.Context, m Message) error {
		cur := active.Add(1)
		defer active.Add(-1)
		for old := maxActive.Load(); cur > old && !maxActive.CompareAndSwap(old, cur); old = maxActive.Load() {
		}
		if cur == slots {
			busyOnce.Do(func() { close(allBusy) })
		}
		mu.Lock()
		seen[m.ID]++
		gotBodies[string(m.Body)] = true
		mu.Unlock()
		// The first job waits until every slot is busy, which proves the
		// worker really runs Concurrency jobs at once.
		first.Do(func() {
			select {
			case <-allBusy:
			case <-time.After(5 * time.Second):
			}
		})
		return nil
	})
	r := newRecorder(c)
	cfg := testConfig(url, dlq)
	cfg.Concurrency = slots
	w, err := New(cfg, r, p, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	r.until(t, 15*time.Second, "25 deletes", func() bool { return len(r.deleted) == n })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	select {
	case <-allBusy:
	default:
		t.Errorf("never had %d jobs running at once (max %d)", slots, maxActive.Load())
	}
	if got := maxActive.Load(); got > slots {
		t.Errorf("max concurrent Process calls = %d, want ≤ %d", got, slots)
	}
	// A slot is free once its job ends; the message then waits for its
	// batched delete. A batch (here 4, the slots) may wait for a slot.
	if want := 3 * slots; r.maxHeld > want {
		t.Errorf("worker held up to %d received-but-undeleted messages, want ≤ %d (%d running, %d ahead, %d waiting for the delete)", r.maxHeld, want, slots, slots, slots)
	}
	if r.maxAsked > 2*slots {
		t.Errorf("a receive asked for %d messages with %d slots and %d ahead", r.maxAsked, slots, slots)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("message %s processed %d times, want 1", id, seen[id])
		}
	}
	for _, b := range bodies {
		if !gotBodies[b] {
			t.Errorf("body %q never reached the processor", b)
		}
	}
	want := Stats{Received: n, Succeeded: n, Deleted: n}
	if got := w.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	if left := queueCount(t, c, url); left != 0 {
		t.Errorf("queue holds %d messages after the run, want 0", left)
	}
}

// capacity is a Capacity the test can change; each Available call is
// announced on calls.
type capacity struct {
	n     atomic.Int64
	calls chan struct{}
}

func (c *capacity) Available() int {
	select {
	case c.calls <- struct{}{}:
	default:
	}
	return int(c.n.Load())
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	c := emulator.SQS(endpoint)
	url, dlq := newQueues(t, c)
	send(t, c, url, "a", "b", "c", "d", "e", "f")

	capa := &capacity{calls: make(chan struct{})}
	r := newRecorder(c)
	w, err := New(testConfig(url, dlq), r, ProcessorFunc(func(context.Context, Message) error { return nil }),
		WithLogger(quietLogger()), WithCapacity(capa))
	if err != nil {
		t.Fatal(err)
	}
	w.capacityRecheck = 10 * time.Millisecond
	stop := run(t, w, 5*time.Second)

	// Let the loop find no capacity several times over.
	for range 5 {
		select {
		case <-capa.calls:
		case <-time.After(5 * time.Second):
			t.Fatal("the receive loop stopped asking for capacity")
		}
	}
	r.mu.Lock()
	receives := r.receives
	r.mu.Unlock()
	if receives != 0 {
		t.Fatalf("ReceiveMessage called %d times with no capacity, want 0", receives)
	}

	capa.n.Store(3)
	r.until(t, 10*time.Second, "6 deletes", func() bool { return len(r.deleted) == 6 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.maxAsked > 3 {
		t.Errorf("a receive asked for %d messages with capacity 3", r.maxAsked)
	}
}

func TestHeartbeatKeepsLongJobInvisible(t *testing.T) {
	t.Parallel()
	c := emulator.SQS(endpoint)
	url, dlq := newQueues(t, c)
	ids := send(t, c, url, "slow")

	r := newRecorder(c)
	calls := map[string]int{} // guarded by r.mu, so waits can watch it
	p := ProcessorFunc(func(ctx context.Context, m Message) error {
		r.mu.Lock()
		calls[m.ID]++
		r.changedLocked()
		r.mu.Unlock()
		select { // the job itself: about 5 s of work
		case <-time.After(5 * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	cfg := testConfig(url, dlq)
	cfg.Concurrency = 2
	cfg.VisibilityTimeout = 2 * time.Second
	cfg.HeartbeatInterval = 250 * time.Millisecond
	// Two workers on one queue: without the heartbeat, the message would
	// reappear after 2 s and one of them would take it again.
	var workers []*Worker
	for range 2 {
		w, err := New(cfg, r, p, WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
		run(t, w, 5*time.Second)
	}
	r.until(t, 15*time.Second, "the slow message's delete or its redelivery", func() bool {
		return len(r.deleted) == 1 || calls[ids[0]] > 1
	})
	r.mu.Lock()
	got := calls[ids[0]]
	r.mu.Unlock()
	if got != 1 {
		t.Errorf("Process called %d times for the slow message, want 1", got)
	}
	if hb := workers[0].Stats().Heartbeats + workers[1].Stats().Heartbeats; hb < 2 {
		t.Errorf("%d heartbeats for a 5 s job with a 2 s visibility, want ≥ 2", hb)
	}
	if left := queueCount(t, c, url); left != 0 {
		t.Errorf("queue holds %d messages, want 0", left)
	}
}

func TestReleaseDelays(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		err          error
		releaseDelay time.Duration
		want         time.Duration
	}{
		"ReleaseAfter":         {err: ReleaseAfter(errors.New("throttled"), 2*time.Second), releaseDelay: 10 * time.Second, want: 2 * time.Second},
		"ReleaseWithin sooner": {err: ReleaseWithin(errors.New("claimed"), 2*time.Second), releaseDelay: 10 * time.Second, want: 2 * time.Second},
		"ReleaseWithin capped": {err: ReleaseWithin(errors.New("claimed"), 10*time.Second), releaseDelay: time.Second, want: time.Second},
		"Release":              {err: Release(errors.New("S3 down")), releaseDelay: time.Second, want: time.Second},
		"plain error":          {err: errors.New("model busy"), releaseDelay: time.Second, want: time.Second},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := emulator.SQS(endpoint)
			url, dlq := newQueues(t, c)
			send(t, c, url, "x")

			deliveries := make(chan Message, 2)
			p := ProcessorFunc(func(_ context.Context, m Message) error {
				deliveries <- m
				if m.ReceiveCount == 1 {
					return tc.err
				}
				return nil
			})
			cfg := testConfig(url, dlq)
			cfg.ReleaseDelay = tc.releaseDelay
			r := newRecorder(c)
			w, err := New(cfg, r, p, WithLogger(quietLogger()))
			if err != nil {
				t.Fatal(err)
			}
			stop := run(t, w, 5*time.Second)
			var first, second Message
			select {
			case first = <-deliveries:
			case <-time.After(10 * time.Second):
				t.Fatal("the message was never delivered")
			}
			select {
			case second = <-deliveries:
			case <-time.After(tc.want + 8*time.Second):
				t.Fatal("the released message never came back")
			}
			r.until(t, 5*time.Second, "the delete", func() bool { return len(r.deleted) == 1 })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			if second.ReceiveCount != 2 {
				t.Errorf("second delivery ReceiveCount = %d, want 2", second.ReceiveCount)
			}
			// Lower bound: the release happened after the first receive. Upper
			// bound: kumo redelivers on the next poll (WaitTime 1 s), plus slack
			// for a loaded machine.
			gap := second.ReceivedAt.Sub(first.ReceivedAt)
			if gap < tc.want || gap > tc.want+4*time.Second {
				t.Errorf("message came back after %v, want about %v", gap, tc.want)
			}
			if s := w.Stats(); s.Released != 1 || s.Failed != 1 || s.Deleted != 1 {
				t.Errorf("Stats = %+v, want 1 released, 1 failed, 1 deleted", s)
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	c := emulator.SQS(endpoint)
	url, dlq := newQueues(t, c)
	ctx := context.Background()
	body := `{"not":"a job"}`
	out, err := c.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(url), MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"trace": {DataType: aws.String("String"), StringValue: aws.String("t-1")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	reason := "not a job: missing job_id"
	var attrs map[string]string
	p := ProcessorFunc(func(_ context.Context, m Message) error {
		attrs = m.Attributes
		return fmt.Errorf("decode job: %w", poison(reason))
	})
	r := newRecorder(c)
	w, err := New(testConfig(url, dlq), r, p, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	r.until(t, 10*time.Second, "the original's delete", func() bool { return len(r.deleted) == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if attrs["trace"] != "t-1" {
		t.Errorf("Message.Attributes = %v, want trace=t-1", attrs)
	}

	got, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(dlq), WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(got.Messages))
	}
	m := got.Messages[0]
	if aws.ToString(m.Body) != body {
		t.Errorf("DLQ body = %q, want the original %q", aws.ToString(m.Body), body)
	}
	wantAttrs := map[string]string{
		AttrDeadLetterReason: "decode job: " + reason,
		AttrSourceMessageID:  *out.MessageId,
		AttrReceiveCount:     "1",
		"trace":              "t-1",
	}
	for k, want := range wantAttrs {
		if got := aws.ToString(m.MessageAttributes[k].StringValue); got != want {
			t.Errorf("DLQ attribute %s = %q, want %q", k, got, want)
		}
	}
	if left := queueCount(t, c, url); left != 0 {
		t.Errorf("main queue holds %d messages, want 0", left)
	}
	if s := w.Stats(); s.DeadLettered != 1 || s.Deleted != 1 || s.Released != 0 {
		t.Errorf("Stats = %+v, want 1 dead-lettered and deleted, 0 released", s)
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()

	t.Run("past the drain window jobs are cancelled and released", func(t *testing.T) {
		t.Parallel()
		c := emulator.SQS(endpoint)
		url, dlq := newQueues(t, c)
		send(t, c, url, "quick-1", "quick-2", "block")

		quick := make(chan struct{}, 2)
		blocked := make(chan struct{})
		var sawCancel atomic.Bool
		p := ProcessorFunc(func(ctx context.Context, m Message) error {
			if string(m.Body) != "block" {
				quick <- struct{}{}
				return nil
			}
			close(blocked)
			<-ctx.Done()
			sawCancel.Store(true)
			return ctx.Err()
		})
		cfg := testConfig(url, dlq)
		cfg.Concurrency = 3
		cfg.DrainTimeout = 300 * time.Millisecond
		// Long enough that only the shutdown flush can delete the quick ones.
		cfg.VisibilityTimeout = time.Minute // the flush interval must stay below half of it
		cfg.DeleteFlushInterval = 25 * time.Second
		r := newRecorder(c)
		w, err := New(cfg, r, p, WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		// Run may only return in time if cancelling the job's context is what
		// ended it, not the grace for jobs that ignore cancellation.
		w.cancelGrace = time.Minute
		stop := run(t, w, cfg.DrainTimeout+2*time.Second)
		for _, ch := range []<-chan struct{}{quick, quick, blocked} {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("jobs did not start")
			}
		}
		r.mu.Lock()
		early := len(r.deleted)
		r.mu.Unlock()
		if early != 0 {
			t.Fatalf("%d deletes before shutdown; the test needs them pending", early)
		}

		begin := time.Now()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Logf("Run returned %v after cancellation", time.Since(begin))
		if !sawCancel.Load() {
			t.Error("the blocked job's context was not cancelled")
		}
		if len(r.deleted) != 2 || r.releasedAt0 != 1 {
			t.Errorf("after Run: %d deleted, %d released with visibility 0; want 2 and 1", len(r.deleted), r.releasedAt0)
		}
		got, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), WaitTimeSeconds: 0,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != "block" {
			t.Fatalf("immediate receive after shutdown got %d messages, want the released one", len(got.Messages))
		}
		if rc := got.Messages[0].Attributes["ApproximateReceiveCount"]; rc != "2" {
			t.Errorf("released message ReceiveCount = %s, want 2", rc)
		}
		if s := w.Stats(); s.Deleted != 2 || s.Released != 1 || s.InFlight != 0 {
			t.Errorf("Stats = %+v, want 2 deleted, 1 released, 0 in flight", s)
		}
	})

	t.Run("jobs that finish within the drain window are deleted", func(t *testing.T) {
		t.Parallel()
		c := emulator.SQS(endpoint)
		url, dlq := newQueues(t, c)
		send(t, c, url, "job")

		started, proceed := make(chan struct{}), make(chan struct{})
		var ctxErr atomic.Value
		p := ProcessorFunc(func(ctx context.Context, m Message) error {
			close(started)
			<-proceed
			ctxErr.Store(fmt.Sprint(ctx.Err()))
			return nil
		})
		cfg := testConfig(url, dlq)
		cfg.DrainTimeout = 10 * time.Second
		r := newRecorder(c)
		w, err := New(cfg, r, p, WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, w, 5*time.Second)
		<-started
		errc := make(chan error, 1)
		go func() { errc <- stop() }()
		// Run must wait for the job: it cannot have returned yet.
		select {
		case err := <-errc:
			t.Fatalf("Run returned (%v) while a job was still running inside the drain window", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(proceed)
		if err := <-errc; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := ctxErr.Load(); got != "<nil>" {
			t.Errorf("job context error = %v, want nil (not cancelled inside the drain window)", got)
		}
		if len(r.deleted) != 1 || r.released != 0 {
			t.Errorf("%d deleted, %d released; want 1 and 0", len(r.deleted), r.released)
		}
	})
}

func TestPanicIsReleasedAndWorkerSurvives(t *testing.T) {
	t.Parallel()
	c := emulator.SQS(endpoint)
	url, dlq := newQueues(t, c)
	send(t, c, url, "boom", "fine")

	p := ProcessorFunc(func(_ context.Context, m Message) error {
		if string(m.Body) == "boom" && m.ReceiveCount == 1 {
			panic("processor bug")
		}
		return nil
	})
	cfg := testConfig(url, dlq)
	cfg.ReleaseDelay = time.Second
	r := newRecorder(c)
	w, err := New(cfg, r, p, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	r.until(t, 10*time.Second, "both messages deleted", func() bool { return len(r.deleted) == 2 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s := w.Stats(); s.Panics != 1 || s.Released != 1 || s.Deleted != 2 || s.Received != 3 {
		t.Errorf("Stats = %+v, want 1 panic, 1 release, 2 deletes, 3 receives", s)
	}
}

func TestMissingQueueStopsRun(t *testing.T) {
	t.Parallel()
	c := emulator.SQS(endpoint)
	_, dlq := newQueues(t, c)
	cfg := testConfig(strings.TrimSuffix(dlq, "-dlq")+"-never-created", dlq)
	w, err := New(cfg, c, ProcessorFunc(func(context.Context, Message) error { return nil }), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	select {
	case err := <-done:
		if !awserr.MissingQueue(err) {
			t.Errorf("Run error = %v, want the missing-queue error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going on a queue that does not exist")
	}
}
