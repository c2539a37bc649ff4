package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
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
	vis        []visCall
	visBatches []int // entry count per ChangeMessageVisibilityBatch call
	sendErr    error
	sent       []*sqs.SendMessageInput
}

func newFakeQueue(n int) *fakeQueue {
	f := &fakeQueue{deleted: map[string]bool{}, failDelete: map[string]int{}}
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
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return deadLetterErr{"poison"} }),
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
	cfg.Concurrency = 3 // all three deletes go in one batch
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return nil }), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	f.until(t, 5*time.Second, "two delete calls", func() bool { return len(f.deletes) == 2 })
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
		cfg.DeleteFlushInterval = 25 * time.Second
		w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return nil }), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, w, 5*time.Second)
		f.until(t, 5*time.Second, "20 deletes", func() bool { return len(f.deleted) >= 20 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(f.deleted) != 25 {
			t.Errorf("%d deleted after shutdown, want 25", len(f.deleted))
		}
		full := false
		for _, d := range f.deletes {
			if len(d) > 10 {
				t.Errorf("a DeleteMessageBatch had %d entries", len(d))
			}
			full = full || len(d) == 10
		}
		if !full {
			t.Errorf("no full batch of 10 among %d delete calls", len(f.deletes))
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
// SQS's 12 h limit extend to the limit once, warn, and stop.
func TestHeartbeatTiming(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(1)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var offset atomic.Int64
	clock := func() time.Time { return t0.Add(time.Duration(offset.Load())) }
	at := func(d time.Duration) { offset.Store(int64(d)) }

	cfg := fakeConfig()
	cfg.VisibilityTimeout = 60 * time.Second
	cfg.HeartbeatInterval = 29 * time.Second // the loop stays out of the way; the test calls heartbeat
	logs := &logBuffer{}
	started, release := make(chan struct{}), make(chan struct{})
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error {
		close(started)
		<-release
		return nil
	}), WithClock(clock), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
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
		{12 * time.Hour, nil},                                      // capped: nothing more
	}
	calls := 0
	for _, s := range steps {
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
	close(release)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Heartbeats != 3 {
		t.Errorf("Stats.Heartbeats = %d, want 3", s.Heartbeats)
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
