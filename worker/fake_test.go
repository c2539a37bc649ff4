package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/tierq/tierq/internal/testenv"
)

// Unit tests: a hand-written in-memory Queue makes failures and batch
// shapes deterministic.

type visCall struct {
	handle string
	secs   int32
	batch  bool
}

type fakeQueue struct {
	watch
	receives   int
	ready      []types.Message // waiting to be received
	deletes    [][]string      // receipt handles per DeleteMessageBatch call
	deleted    map[string]bool
	failDelete map[string]int // receipt handle → failures left (<0: always)
	failVis    map[string]int // the same for ChangeMessageVisibilityBatch entries
	vis        []visCall      // successful visibility changes
	visBatches []int          // entry count per ChangeMessageVisibilityBatch call
	sendErr    error
	sent       []*sqs.SendMessageInput
}

func newFakeQueue(n int) *fakeQueue {
	f := &fakeQueue{deleted: map[string]bool{}, failDelete: map[string]int{}, failVis: map[string]int{}}
	for i := range n {
		f.ready = append(f.ready, types.Message{
			MessageId:     aws.String("m" + strconv.Itoa(i)),
			ReceiptHandle: aws.String("h" + strconv.Itoa(i)),
			Body:          aws.String("body " + strconv.Itoa(i)),
			Attributes:    map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
		})
	}
	return f
}

func (f *fakeQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	f.receives++
	f.changedLocked()
	if len(f.ready) > 0 {
		n := min(int(in.MaxNumberOfMessages), len(f.ready))
		out := &sqs.ReceiveMessageOutput{Messages: f.ready[:n]}
		f.ready = f.ready[n:]
		f.mu.Unlock()
		return out, nil
	}
	f.mu.Unlock()
	<-ctx.Done() // an empty long poll, ended by shutdown
	return nil, ctx.Err()
}

func (f *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.changedLocked()
	out := &sqs.DeleteMessageBatchOutput{}
	var handles []string
	for _, e := range in.Entries {
		h := *e.ReceiptHandle
		handles = append(handles, h)
		if left := f.failDelete[h]; left != 0 {
			f.failDelete[h] = left - 1
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		f.deleted[h] = true
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	f.deletes = append(f.deletes, handles)
	return out, nil
}

func (f *fakeQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vis = append(f.vis, visCall{handle: *in.ReceiptHandle, secs: in.VisibilityTimeout})
	f.changedLocked()
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (f *fakeQueue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		if left := f.failVis[*e.ReceiptHandle]; left != 0 {
			f.failVis[*e.ReceiptHandle] = left - 1
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("stale")})
			continue
		}
		f.vis = append(f.vis, visCall{handle: *e.ReceiptHandle, secs: e.VisibilityTimeout, batch: true})
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	f.visBatches = append(f.visBatches, len(in.Entries))
	f.changedLocked()
	return out, nil
}

func (f *fakeQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.changedLocked()
	if f.sendErr != nil {
		return nil, f.sendErr
	}
	f.sent = append(f.sent, in)
	return &sqs.SendMessageOutput{MessageId: aws.String("dlq-" + strconv.Itoa(len(f.sent)))}, nil
}

func fakeConfig() Config {
	return Config{QueueURL: "https://sqs.example/q", DeadLetterQueueURL: "https://sqs.example/dlq"}
}

func TestDeadLetterSendFailureReleases(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(1)
	f.sendErr = errors.New("DLQ unavailable")
	cfg := fakeConfig()
	cfg.ReleaseDelay = 7 * time.Second
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return poison("poison") }),
		WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	f.until(t, 5*time.Second, "the release", func() bool { return len(f.vis) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.vis[0], (visCall{handle: "h0", secs: 7}); got != want {
		t.Errorf("visibility change = %+v, want %+v", got, want)
	}
	if len(f.deleted) != 0 {
		t.Errorf("deleted %v although the dead-letter copy failed", f.deleted)
	}
	if s := w.Stats(); s.DeadLettered != 0 || s.Released != 1 {
		t.Errorf("Stats = %+v, want 0 dead-lettered, 1 released", s)
	}
}

func TestDeleteRetriesFailedEntriesOnce(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(3)
	f.failDelete["h0"] = 1  // fails once, then succeeds
	f.failDelete["h1"] = -1 // always fails
	cfg := fakeConfig()
	cfg.Concurrency = 3 // all three deletes go in one batch...
	// ...which no flush tick may split: only the full batch or the stop
	// flush deletes.
	cfg.VisibilityTimeout = time.Minute // the flush interval must stay below half of it
	cfg.DeleteFlushInterval = 25 * time.Second
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return nil }), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	// Every received message is settled before Run returns.
	f.until(t, 5*time.Second, "all messages received", func() bool { return len(f.ready) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(f.deletes) != 2 || len(f.deletes[1]) != 2 {
		t.Fatalf("delete calls = %v, want one of 3 entries and one retry of the 2 failed", f.deletes)
	}
	if !f.deleted["h0"] || !f.deleted["h2"] || f.deleted["h1"] {
		t.Errorf("deleted = %v, want h0 and h2", f.deleted)
	}
	if s := w.Stats(); s.Deleted != 2 || s.InFlight != 0 {
		t.Errorf("Stats = %+v, want 2 deleted and nothing in flight", s)
	}
}

func TestBatchesHoldAtMostTen(t *testing.T) {
	t.Parallel()
	t.Run("deletes", func(t *testing.T) {
		t.Parallel()
		f := newFakeQueue(25)
		cfg := fakeConfig()
		cfg.Concurrency = 25
		// Only full batches and the shutdown flush delete: a tick cannot
		// split a batch and make the test depend on timing.
		cfg.VisibilityTimeout = time.Minute // the flush interval must stay below half of it
		cfg.DeleteFlushInterval = 25 * time.Second
		w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return nil }), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, w, 5*time.Second)
		// Every received message is settled before Run returns.
		f.until(t, 5*time.Second, "all messages received", func() bool { return len(f.ready) == 0 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(f.deleted) != 25 {
			t.Errorf("%d deleted after shutdown, want 25", len(f.deleted))
		}
		// Full batches go as they fill and the rest at the stop, however the
		// jobs interleave: 10, 10 and 5.
		var sizes []int
		for _, d := range f.deletes {
			sizes = append(sizes, len(d))
		}
		slices.Sort(sizes)
		if fmt.Sprint(sizes) != "[5 10 10]" {
			t.Errorf("DeleteMessageBatch sizes = %v, want two full batches of 10 and one of 5", sizes)
		}
	})
	t.Run("shutdown releases", func(t *testing.T) {
		t.Parallel()
		f := newFakeQueue(12)
		cfg := fakeConfig()
		cfg.Concurrency = 12
		cfg.DrainTimeout = 10 * time.Millisecond
		var started sync.WaitGroup
		started.Add(12)
		w, err := New(cfg, f, ProcessorFunc(func(ctx context.Context, m Message) error {
			started.Done()
			<-ctx.Done()
			return ctx.Err()
		}), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, w, 5*time.Second)
		started.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(f.visBatches) != "[10 2]" {
			t.Errorf("release batch sizes = %v, want [10 2]", f.visBatches)
		}
		for _, v := range f.vis {
			if !v.batch || v.secs != 0 {
				t.Errorf("shutdown release %+v, want a batch entry with visibility 0", v)
			}
		}
		if s := w.Stats(); s.Released != 12 || s.InFlight != 0 {
			t.Errorf("Stats = %+v, want 12 released, 0 in flight", s)
		}
	})
}

func TestJobIgnoringCancellationIsAbandoned(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(1)
	cfg := fakeConfig()
	cfg.DrainTimeout = 10 * time.Millisecond
	started, unblock := make(chan struct{}), make(chan struct{})
	defer close(unblock)
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error {
		close(started)
		<-unblock // ignores its context
		return nil
	}), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	w.cancelGrace = 10 * time.Millisecond
	stop := run(t, w, 2*time.Second)
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(f.vis) != 1 || f.vis[0] != (visCall{handle: "h0", secs: 0, batch: true}) {
		t.Errorf("visibility changes = %+v, want the stuck job's message released at once", f.vis)
	}
	if s := w.Stats(); s.Released != 1 || s.InFlight != 0 {
		t.Errorf("Stats = %+v, want 1 released, 0 in flight", s)
	}
}

// TestHeartbeatTiming drives the heartbeat by hand with an injected clock:
// extend once half the visibility is used, by VisibilityTimeout, and near
// SQS's 12 h limit extend to the limit once, warn, and then cancel the job
// instead of extending again.
func TestHeartbeatTiming(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(1)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var offset atomic.Int64
	clock := func() time.Time { return t0.Add(time.Duration(offset.Load())) }
	at := func(d time.Duration) { offset.Store(int64(d)) }

	cfg := fakeConfig()
	cfg.VisibilityTimeout = 60 * time.Second
	logs := &testenv.Buffer{}
	started, cancelled := make(chan struct{}), make(chan struct{})
	w, err := New(cfg, f, ProcessorFunc(func(ctx context.Context, _ Message) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}), WithClock(clock), WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		// The heartbeat never ticks by itself: the test calls it.
		WithHeartbeatTicks(make(chan time.Time)))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	<-started

	steps := []struct {
		at   time.Duration
		want []int32 // visibility of each new extension
	}{
		{29 * time.Second, nil},                                    // under half used
		{31 * time.Second, []int32{60}},                            // half used: extend by 60 s
		{60 * time.Second, nil},                                    // 29 s into the new 60 s
		{62 * time.Second, []int32{60}},                            // half again
		{12*time.Hour - time.Minute - 40*time.Second, []int32{40}}, // only 40 s left before the limit
		{12 * time.Hour, nil},                                      // capped: the job is cancelled instead
	}
	calls := 0
	for _, s := range steps {
		select {
		case <-cancelled:
			t.Fatalf("job cancelled before +%v", s.at)
		default:
		}
		at(s.at)
		w.heartbeat()
		f.mu.Lock()
		var got []int32
		for _, v := range f.vis[calls:] {
			got = append(got, v.secs)
		}
		calls = len(f.vis)
		f.mu.Unlock()
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("at +%v: extensions %v, want %v", s.at, got, s.want)
		}
	}
	if !strings.Contains(logs.String(), "12h visibility limit") {
		t.Errorf("no warning about the 12h limit in the log:\n%s", logs)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("job not cancelled once its last extension was half used")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Heartbeats != 3 || s.Lost != 1 {
		t.Errorf("Stats = %+v, want 3 heartbeats and 1 lost", s)
	}
}

func TestVisibilitySeconds(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		delay, since time.Duration
		want         int32
	}{
		"negative is now":        {delay: -time.Second, want: 0},
		"zero is now":            {delay: 0, want: 0},
		"rounds up":              {delay: 1500 * time.Millisecond, want: 2},
		"whole seconds kept":     {delay: 30 * time.Second, since: time.Hour, want: 30},
		"capped at 12h":          {delay: 48 * time.Hour, want: int32((12*time.Hour - capMargin) / time.Second)},
		"capped by time held":    {delay: time.Hour, since: 11 * time.Hour, want: int32((time.Hour - capMargin) / time.Second)},
		"past the limit: now":    {delay: time.Hour, since: 12 * time.Hour, want: 0},
		"inside the margin: now": {delay: 10 * time.Second, since: 12*time.Hour - 30*time.Second, want: 0},
	}
	for name, c := range cases {
		if got := visibilitySeconds(c.delay, c.since); got != c.want {
			t.Errorf("%s: visibilitySeconds(%v, %v) = %d, want %d", name, c.delay, c.since, got, c.want)
		}
	}
}

func TestToMessage(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]struct {
		in   types.Message
		want Message
	}{
		"full": {
			in: types.Message{
				MessageId: aws.String("id"), ReceiptHandle: aws.String("rh"), Body: aws.String(`{"v":1}`),
				Attributes: map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1767225600123"},
				MessageAttributes: map[string]types.MessageAttributeValue{
					"s":   {DataType: aws.String("String"), StringValue: aws.String("x")},
					"n":   {DataType: aws.String("Number"), StringValue: aws.String("42")},
					"bin": {DataType: aws.String("Binary"), BinaryValue: []byte{1}},
				},
			},
			want: Message{ID: "id", Body: []byte(`{"v":1}`), ReceiveCount: 3, SentAt: time.UnixMilli(1767225600123),
				ReceivedAt: now, Attributes: map[string]string{"s": "x", "n": "42"}, receiptHandle: "rh"},
		},
		"missing and malformed system attributes": {
			in:   types.Message{MessageId: aws.String("id"), ReceiptHandle: aws.String("rh"), Body: aws.String("b"), Attributes: map[string]string{"ApproximateReceiveCount": "many"}},
			want: Message{ID: "id", Body: []byte("b"), ReceivedAt: now, receiptHandle: "rh"},
		},
	}
	for name, c := range cases {
		got := toMessage(c.in, now)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", c.want) || !got.SentAt.Equal(c.want.SentAt) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, c.want)
		}
	}
}

func TestDeadLetterReason(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 1500)
	cases := map[string]struct {
		err  error
		want string
	}{
		"plain":              {err: errors.New("not a job"), want: "not a job"},
		"truncated by chars": {err: errors.New(long), want: strings.Repeat("é", maxReasonChars)},
		"invalid characters": {err: errors.New("bad\x00byte\xff\ttab"), want: "bad\uFFFDbyte\uFFFD\ttab"},
		"empty":              {err: errors.New(""), want: "unknown"},
	}
	for name, c := range cases {
		if got := deadLetterReason(c.err); got != c.want {
			t.Errorf("%s: deadLetterReason = %q, want %q", name, got, c.want)
		}
	}
}

func TestDeadLetterAttributesFitSQSLimit(t *testing.T) {
	t.Parallel()
	orig := map[string]types.MessageAttributeValue{}
	for i := range 10 {
		orig[fmt.Sprintf("a%d", i)] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("v")}
	}
	orig[AttrDeadLetterReason] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("stale")}
	got := deadLetterAttributes(orig, "why", "id-1", 2)
	if len(got) != maxMessageAttributes {
		t.Fatalf("%d attributes, want %d", len(got), maxMessageAttributes)
	}
	for _, name := range []string{"a0", "a6"} {
		if _, ok := got[name]; !ok {
			t.Errorf("original attribute %s dropped; the first ones by name should be kept", name)
		}
	}
	if _, ok := got["a7"]; ok {
		t.Error("kept a7, which does not fit beside the three dead-letter attributes")
	}
	want := map[string]string{AttrDeadLetterReason: "why", AttrSourceMessageID: "id-1", AttrReceiveCount: "2"}
	for k, v := range want {
		if g := aws.ToString(got[k].StringValue); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
}

func TestNewAndRunMisuse(t *testing.T) {
	t.Parallel()
	_, err := New(Config{}, nil, nil)
	if err == nil {
		t.Fatal("New accepted an empty config and nil dependencies")
	}
	for _, want := range []string{"QueueURL", "DeadLetterQueueURL", "queue client is nil", "processor is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error does not mention %q:\n%v", want, err)
		}
	}

	f := newFakeQueue(0)
	w, err := New(fakeConfig(), f, ProcessorFunc(func(context.Context, Message) error { return nil }), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	f.until(t, 5*time.Second, "the first Run to poll", func() bool { return f.receives > 0 })
	if err := w.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestLostMessageCancelsJob: once a running job's visibility can no longer
// be extended, its message will reappear for another worker, so the job is
// cancelled rather than left to pay for the model twice; whatever it returns
// then, the message is not released (it is visible already or soon).
func TestLostMessageCancelsJob(t *testing.T) {
	t.Parallel()
	const limit = 12*time.Hour - capMargin
	failing := []time.Duration{31 * time.Second, 46 * time.Second, 61 * time.Second} // due each time, never extended
	cases := map[string]struct {
		failVis  bool
		early    []time.Duration // heartbeats that must not cancel the job
		last     time.Duration   // the heartbeat that gives up
		outcome  func(ctx context.Context, unblock <-chan struct{}) error
		want     Stats
		wantVis  []visCall
		deadLast bool
	}{
		"extensions keep failing": {
			failVis: true, early: failing[:2], last: failing[2],
			outcome: func(ctx context.Context, _ <-chan struct{}) error { return ctx.Err() },
			want:    Stats{Received: 1, Failed: 1, Lost: 1},
		},
		"last extension before the 12h limit half used": {
			early:   []time.Duration{limit - 40*time.Second, limit - 30*time.Second},
			last:    limit - 15*time.Second,
			outcome: func(ctx context.Context, _ <-chan struct{}) error { return ctx.Err() },
			want:    Stats{Received: 1, Failed: 1, Lost: 1, Heartbeats: 1},
			wantVis: []visCall{{handle: "h0", secs: 40, batch: true}},
		},
		"12h limit already reached": {
			last:    12 * time.Hour,
			outcome: func(ctx context.Context, _ <-chan struct{}) error { return ctx.Err() },
			want:    Stats{Received: 1, Failed: 1, Lost: 1},
		},
		"job finishes anyway: deleted": {
			failVis: true, early: failing[:2], last: failing[2],
			outcome: func(context.Context, <-chan struct{}) error { return nil },
			want:    Stats{Received: 1, Succeeded: 1, Deleted: 1, Lost: 1},
		},
		"dead-letter after the loss: left to the next delivery": {
			failVis: true, early: failing[:2], last: failing[2],
			outcome: func(context.Context, <-chan struct{}) error { return poison("poison") },
			want:    Stats{Received: 1, Failed: 1, Lost: 1},
		},
		"job ignores cancellation: not released at shutdown": {
			failVis: true, early: failing[:2], last: failing[2],
			outcome: func(_ context.Context, unblock <-chan struct{}) error { <-unblock; return nil },
			want:    Stats{Received: 1, Lost: 1},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeQueue(1)
			if c.failVis {
				f.failVis["h0"] = -1
			}
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var offset atomic.Int64
			clock := func() time.Time { return t0.Add(time.Duration(offset.Load())) }

			cfg := fakeConfig()
			cfg.VisibilityTimeout = 60 * time.Second
			cfg.DrainTimeout = 10 * time.Millisecond
			logs := &testenv.Buffer{}
			started, cancelled, unblock := make(chan struct{}), make(chan struct{}), make(chan struct{})
			defer close(unblock)
			w, err := New(cfg, f, ProcessorFunc(func(ctx context.Context, m Message) error {
				close(started)
				<-ctx.Done()
				close(cancelled)
				return c.outcome(ctx, unblock)
			}), WithClock(clock), WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
				// The heartbeat never ticks by itself: the test calls it.
				WithHeartbeatTicks(make(chan time.Time)))
			if err != nil {
				t.Fatal(err)
			}
			w.cancelGrace = 10 * time.Millisecond
			stop := run(t, w, 5*time.Second)
			<-started

			for _, at := range c.early {
				offset.Store(int64(at))
				w.heartbeat()
				select {
				case <-cancelled:
					t.Fatalf("job cancelled at +%v, while its visibility could still be extended", at)
				default:
				}
			}
			offset.Store(int64(c.last))
			w.heartbeat()
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatalf("job still running after the heartbeat gave up on its message at +%v", c.last)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}

			if got := w.Stats(); got != c.want {
				t.Errorf("Stats = %+v, want %+v", got, c.want)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if fmt.Sprint(f.vis) != fmt.Sprint(c.wantVis) {
				t.Errorf("visibility changes = %+v, want %+v (no release of a lost message)", f.vis, c.wantVis)
			}
			if len(f.sent) != 0 {
				t.Errorf("sent %d dead-letter copies of a lost message", len(f.sent))
			}
			if out := logs.String(); !strings.Contains(out, "message_id=m0") || !strings.Contains(out, "cancelling the job") {
				t.Errorf("no warning naming the message and the cancellation:\n%s", out)
			}
		})
	}
}

// TestStaleDeleteKickDoesNotSplitBatch: a wake-up left over from an earlier
// full batch must not send the few deletes pending now as a batch of their
// own; they wait for a full batch or the flush interval.
func TestStaleDeleteKickDoesNotSplitBatch(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(0)
	cfg := fakeConfig()
	cfg.Concurrency = 10
	cfg.VisibilityTimeout = time.Minute        // the flush interval must stay below half of it
	cfg.DeleteFlushInterval = 25 * time.Second // only a full batch or the stop flushes
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return nil }), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	w.base = context.Background() // what Run would set
	item := func(i int) *inflight {
		return &inflight{msg: Message{ID: "m" + strconv.Itoa(i), receiptHandle: "h" + strconv.Itoa(i)}}
	}
	for i := range 3 {
		w.pending = append(w.pending, item(i))
	}
	w.deleteKick <- struct{}{} // stale: those that filled the batch are gone

	stop, done := make(chan struct{}), make(chan struct{})
	go func() { w.deleteLoop(stop); close(done) }()
	// Let the loop take the stale kick before the batch fills up.
	deadline := time.Now().Add(5 * time.Second)
	for len(w.deleteKick) > 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	for i := 3; i < 10; i++ {
		w.enqueueDelete(item(i))
	}
	close(stop)
	<-done

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deletes) != 1 || len(f.deletes[0]) != 10 {
		t.Errorf("delete calls = %v, want one full batch of 10", f.deletes)
	}
}

func TestTakeDeletes(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		concurrency, pending int
		wholeBatches         bool
		wantTaken            int
	}{
		"tick takes all":                    {concurrency: 25, pending: 13, wantTaken: 13},
		"kick takes whole batches":          {concurrency: 25, pending: 23, wholeBatches: true, wantTaken: 20},
		"stale kick takes nothing":          {concurrency: 25, pending: 3, wholeBatches: true, wantTaken: 0},
		"few slots: a batch is Concurrency": {concurrency: 3, pending: 3, wholeBatches: true, wantTaken: 3},
		"nothing pending":                   {concurrency: 8, wantTaken: 0},
	}
	for name, c := range cases {
		cfg := fakeConfig()
		cfg.Concurrency = c.concurrency
		w, err := New(cfg, newFakeQueue(0), ProcessorFunc(func(context.Context, Message) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.pending {
			w.pending = append(w.pending, &inflight{msg: Message{ID: strconv.Itoa(i)}})
		}
		taken := w.takeDeletes(c.wholeBatches, false)
		if len(taken) != c.wantTaken || len(w.pending) != c.pending-c.wantTaken {
			t.Errorf("%s: took %d leaving %d, want %d leaving %d", name, len(taken), len(w.pending), c.wantTaken, c.pending-c.wantTaken)
		}
		for i, it := range taken { // oldest first
			if it.msg.ID != strconv.Itoa(i) {
				t.Errorf("%s: taken[%d] = %s, want the oldest first", name, i, it.msg.ID)
				break
			}
		}
		if w.deleterDone {
			t.Errorf("%s: deleter marked done by a flush that was not the last", name)
		}
	}
}

// The held hook sees the count rise while jobs are held and fall back to 0
// once every message is deleted: what keeps an ECS task protected from
// scale-in exactly while it has work (internal/taskprotect).
func TestHeldHookFollowsHeldMessages(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(5)
	var mu sync.Mutex
	var counts []int
	hook := func(n int) {
		mu.Lock()
		counts = append(counts, n)
		mu.Unlock()
	}
	cfg := fakeConfig()
	cfg.Concurrency = 2
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return nil }),
		WithLogger(quietLogger()), WithHeldHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		done := len(f.deleted) == 5
		f.mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(counts) == 0 || slices.Max(counts) < 1 || counts[len(counts)-1] != 0 {
		t.Fatalf("held counts %v: want some above 0, ending at 0", counts)
	}
	for i := 1; i < len(counts); i++ {
		if d := counts[i] - counts[i-1]; d != 1 && d != -1 {
			t.Fatalf("held counts %v: want steps of one", counts)
		}
	}
}
