package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/tierq/tierq/internal/awserr"
	"golang.org/x/sync/errgroup"
)

// Timings that are not worth a setting; tests in this package shorten some.
const (
	// capacityRecheck is how often a receive loop blocked only by Capacity
	// asks again (a freed slot also wakes it).
	capacityRecheck = 250 * time.Millisecond
	// cancelGrace is how long jobs get to return after their contexts are
	// cancelled at the end of the drain window.
	cancelGrace = time.Second
	// callTimeout bounds each delete, visibility and dead-letter call, so a
	// hung connection cannot hold a slot or shutdown forever.
	callTimeout = 5 * time.Second
	// receiveBackoffMin and receiveBackoffMax bound the pause after a failed
	// receive; it doubles per consecutive failure.
	receiveBackoffMin = 100 * time.Millisecond
	receiveBackoffMax = 5 * time.Second
	// capMargin keeps extensions this far inside SQS's 12h limit: the worker
	// measures from when the receive returned, SQS from when it answered.
	capMargin = time.Minute
	// maxHeartbeatFailures consecutive failed extensions stop the heartbeat
	// for a message (its receipt handle is most likely stale).
	maxHeartbeatFailures = 3
)

// Option customises a Worker.
type Option func(*Worker)

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(w *Worker) {
		if l != nil {
			w.log = l
		}
	}
}

// WithCapacity bounds each receive by c.Available() as well as by the free
// slots, so messages are not taken off the queue while downstream (the model
// limiters) cannot start them.
func WithCapacity(c Capacity) Option { return func(w *Worker) { w.capacity = c } }

// WithHeldHook calls f with the number of messages the worker holds each
// time it changes (a message received, a message deleted or released). f is
// called with the worker's lock held, so it must not block or call back into
// the worker; an ECS task-protection guard (internal/taskprotect) is the
// intended user: a task is protected from scale-in while it holds work.
func WithHeldHook(f func(n int)) Option { return func(w *Worker) { w.heldHook = f } }

// WithClock sets the clock used for ReceivedAt and the visibility bookkeeping.
func WithClock(now func() time.Time) Option {
	return func(w *Worker) {
		if now != nil {
			w.now = now
		}
	}
}

// WithHeartbeatTicks drives the heartbeat from ticks instead of a ticker
// every Config.HeartbeatInterval: tests send a tick (or none, and call the
// heartbeat themselves) instead of waiting on a real clock.
func WithHeartbeatTicks(ticks <-chan time.Time) Option {
	return func(w *Worker) { w.heartbeatTicks = ticks }
}

// Stats are running totals of a Worker, safe to read at any time.
type Stats struct {
	Received     int64 // messages taken off the queue
	Succeeded    int64 // Process returned nil
	Failed       int64 // Process returned an error or panicked
	Deleted      int64 // messages deleted (succeeded and dead-lettered ones)
	Released     int64 // messages made visible again (failures, shutdown)
	DeadLettered int64 // messages sent to the dead-letter queue
	Heartbeats   int64 // visibility extensions that SQS accepted
	Panics       int64 // panics recovered from Process
	Lost         int64 // jobs cancelled because their message's visibility could not be extended
	InFlight     int64 // received and not yet deleted or released
}

// Worker moves messages between an SQS queue and a Processor. Build it with
// New and start it with Run, once.
type Worker struct {
	cfg      Config
	q        Queue
	p        Processor
	log      *slog.Logger
	capacity Capacity
	now      func() time.Time

	// Copies of the package timings, so tests can shorten them.
	capacityRecheck time.Duration
	cancelGrace     time.Duration
	// heartbeatTicks, when set, replaces the heartbeat's own ticker.
	heartbeatTicks <-chan time.Time
	timers         Timers

	started atomic.Bool
	base    context.Context // Run's context without its cancellation

	mu   sync.Mutex
	held map[string]*inflight // by receipt handle
	// heldHook is told len(held) on every change (WithHeldHook).
	heldHook func(n int)
	// deleting counts the held messages whose job succeeded and which wait
	// for their delete: they hold no slot (see room).
	deleting  int
	cancelled bool          // the drain window is over
	slotFreed chan struct{} // a slot was freed

	// visMu orders visibility changes, so a heartbeat extension can never
	// land after (and undo) the release of a job that just ended.
	visMu sync.Mutex

	dmu         sync.Mutex
	pending     []*inflight // finished, waiting for DeleteMessageBatch
	deleterDone bool
	deleteKick  chan struct{}

	stats struct {
		received, succeeded, failed, deleted, released, deadLettered, heartbeats, panics, lost, inFlight atomic.Int64
	}
}

// inflight is a held message. The fields after cancel are guarded by
// Worker.mu.
type inflight struct {
	msg Message
	raw types.Message // for the dead-letter copy: body and attributes as received
	// cancel cancels the job's context; set before the job starts, so every
	// running message has one.
	cancel context.CancelFunc

	// state is where the message is in its life (lifecycle.go); w.mu guards
	// it, and only msgState.next changes it.
	state      msgState
	extendedAt time.Time     // when the visibility clock was last started
	granted    time.Duration // the visibility granted then
	hbFailures int
	capped     bool // the last extension the 12h limit allows was granted
	// deleting: the job succeeded and the message waits for its delete,
	// holding no slot.
	deleting bool
}

// slotJob is a message handed to a slot goroutine, with its job's context.
type slotJob struct {
	it     *inflight
	ctx    context.Context
	cancel context.CancelFunc
}

// on applies an event to the message's state; the caller holds w.mu.
func (it *inflight) on(e msgEvent) bool {
	next, ok := it.state.next(e)
	it.state = next
	return ok
}

// New returns a Worker for cfg, with defaults applied to its zero fields.
func New(cfg Config, q Queue, p Processor, opts ...Option) (*Worker, error) {
	cfg.ApplyDefaults()
	err := cfg.Validate()
	if q == nil {
		err = errors.Join(err, errors.New("queue client is nil"))
	}
	if p == nil {
		err = errors.Join(err, errors.New("processor is nil"))
	}
	if err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	w := &Worker{
		cfg: cfg, q: q, p: p,
		log:             slog.Default(),
		now:             time.Now,
		capacityRecheck: capacityRecheck, timers: realTimers{},
		cancelGrace: cancelGrace,
		held:        map[string]*inflight{},
		slotFreed:   make(chan struct{}, 1),
		deleteKick:  make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

// Stats returns the running totals.
func (w *Worker) Stats() Stats {
	s := &w.stats
	return Stats{
		Received: s.received.Load(), Succeeded: s.succeeded.Load(), Failed: s.failed.Load(),
		Deleted: s.deleted.Load(), Released: s.released.Load(), DeadLettered: s.deadLettered.Load(),
		Heartbeats: s.heartbeats.Load(), Panics: s.panics.Load(), Lost: s.lost.Load(), InFlight: s.inFlight.Load(),
	}
}

// Run receives and processes messages until ctx is cancelled, then shuts
// down in two phases: it stops receiving at once (the long poll is
// cancelled) and lets running jobs finish within Config.DrainTimeout; then it
// cancels the jobs' contexts, releases their messages with visibility 0 so
// another worker takes them at once, flushes pending deletes and returns.
//
// Run returns nil after a shutdown caused by ctx, and an error when the queue
// does not exist (after the same shutdown). A job that ignores its cancelled
// context is abandoned a second later: its message is released and its
// goroutine is left to finish on its own; its result is then ignored.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("worker: Run called more than once")
	}
	// Jobs and settle calls outlive ctx: they must finish during the drain
	// window, and releases and deletes must still reach SQS after it.
	w.base = context.WithoutCancel(ctx)
	jobCtx, cancelJobs := context.WithCancel(w.base)
	defer cancelJobs()

	stop := make(chan struct{})
	var background errgroup.Group
	background.Go(func() error { w.heartbeatLoop(stop); return nil })
	background.Go(func() error { w.deleteLoop(stop); return nil })

	// One long-lived goroutine per slot runs the jobs handed to it. A
	// goroutine per message would start on a small stack and grow it again
	// through the SDK's middleware for every job (runtime.newstack was 9%
	// of a worker's CPU); a slot's goroutine keeps the stack it grew. The
	// channel holds every message room lets in, so accept never waits.
	work := make(chan slotJob, w.cfg.Concurrency+w.ahead())
	var jobs errgroup.Group
	for range w.cfg.Concurrency {
		jobs.Go(func() error {
			// At shutdown the messages received ahead run too, within
			// the drain window, like the running ones.
			for j := range work {
				w.settle(j.it, w.process(j.ctx, j.it.msg))
				j.cancel()
			}
			return nil
		})
	}
	err := w.receiveLoop(ctx, jobCtx, work)
	close(work)

	jobsDone := make(chan struct{})
	go func() { _ = jobs.Wait(); close(jobsDone) }()
	w.drain(jobsDone, cancelJobs)

	close(stop)
	_ = background.Wait()
	s := w.Stats()
	w.log.Info("worker stopped", "received", s.Received, "deleted", s.Deleted, "released", s.Released,
		"dead_lettered", s.DeadLettered, "in_flight", s.InFlight)
	return err
}

// receiveLoop long-polls for as many messages as there is room for and
// hands each to a slot, until ctx is cancelled or the queue is gone.
func (w *Worker) receiveLoop(ctx, jobCtx context.Context, work chan<- slotJob) error {
	var backoff time.Duration
	for {
		n, ok := w.room(ctx)
		if !ok {
			return nil
		}
		out, err := w.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(w.cfg.QueueURL),
			MaxNumberOfMessages: int32(n),
			WaitTimeSeconds:     int32(w.cfg.WaitTime / time.Second),
			VisibilityTimeout:   int32(w.cfg.VisibilityTimeout / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameApproximateReceiveCount,
				types.MessageSystemAttributeNameSentTimestamp,
			},
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if awserr.MissingQueue(err) {
				return fmt.Errorf("receive from %s: %w", w.cfg.QueueURL, err)
			}
			backoff = min(max(2*backoff, receiveBackoffMin), receiveBackoffMax)
			w.log.Warn("receive failed; retrying", "error", err, "retry_in", backoff)
			if !w.sleep(ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		w.accept(jobCtx, work, out.Messages, n)
	}
}

// room waits until a receive may ask for at least one message and returns
// how many: at most MaxMessages, what fits, and Capacity. ok is false once
// ctx is cancelled.
//
// A slot is free once its job has ended: a succeeded job's message waits
// for its batched delete without holding a slot, so the next job need not
// wait for the batch to fill or the flush interval.
//
// Up to ahead() messages may be received ahead of the slots, to wait for
// one (visible to the heartbeat like a running job's), so that receives
// bring whole batches instead of one message per freed slot: a receive
// goes when a slot is idle, or when a batch of ahead() fits. The worker so
// holds at most Concurrency + ahead() messages that run or wait for a slot,
// and, with those waiting for their delete, at most 2×Concurrency +
// ahead() in all: a stalled delete stops the receives instead of piling
// messages up (a batch goes as soon as it is full, so few wait in
// practice).
func (w *Worker) room(ctx context.Context) (n int, ok bool) {
	c, ahead := w.cfg.Concurrency, w.ahead()
	for {
		w.mu.Lock()
		busy := len(w.held) - w.deleting // running, or waiting for a slot
		free := min(c+ahead-busy, 2*c+ahead-len(w.held))
		w.mu.Unlock()
		if free <= 0 || (busy >= c && free < ahead) {
			select {
			case <-ctx.Done():
				return 0, false
			case <-w.slotFreed:
			}
			continue
		}
		n = min(w.cfg.MaxMessages, free)
		if w.capacity == nil {
			return n, true
		}
		if a := w.capacity.Available(); a > 0 {
			return min(n, a), true
		}
		recheck, stop := w.timers.After(w.capacityRecheck)
		select {
		case <-ctx.Done():
			stop()
			return 0, false
		case <-w.slotFreed:
		case <-recheck:
		}
		stop()
	}
}

// ahead is how many messages may wait for a slot: a receive's worth, and
// never more than there are slots.
func (w *Worker) ahead() int { return min(w.cfg.MaxMessages, w.cfg.Concurrency) }

// accept holds the received messages and hands their jobs to the slots.
// Only this loop adds to held, and it asked for at most what room allowed,
// so work never fills, and no more than Concurrency jobs run; anything
// beyond what was asked for is released.
func (w *Worker) accept(jobCtx context.Context, work chan<- slotJob, msgs []types.Message, asked int) {
	receivedAt := w.now()
	var extra []*inflight
	for i, m := range msgs {
		if aws.ToString(m.ReceiptHandle) == "" {
			w.log.Error("received a message without a receipt handle; skipping it", "message_id", aws.ToString(m.MessageId))
			continue
		}
		// An extra message is held only to be released at once: it never
		// runs, so it starts settled.
		it := &inflight{msg: toMessage(m, receivedAt), raw: m, extendedAt: receivedAt, granted: w.cfg.VisibilityTimeout, state: msgSettled}
		w.stats.received.Add(1)
		w.stats.inFlight.Add(1)
		w.mu.Lock()
		w.held[it.msg.receiptHandle] = it
		w.heldChanged()
		if i >= asked {
			w.mu.Unlock()
			extra = append(extra, it)
			continue
		}
		// Each job has its own context so the heartbeat can cancel it alone
		// when its message is lost.
		ctx, cancel := context.WithCancel(jobCtx)
		it.cancel = cancel
		it.state = msgRunning
		w.mu.Unlock()
		work <- slotJob{it: it, ctx: ctx, cancel: cancel}
	}
	if len(extra) > 0 {
		w.log.Warn("queue returned more messages than asked for; releasing the rest", "asked", asked, "got", len(msgs))
		w.releaseNow(extra)
	}
}

// process runs the Processor, turning a panic into a transient error.
func (w *Worker) process(ctx context.Context, m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.stats.panics.Add(1)
			w.log.Error("processor panicked; releasing the message", "message_id", m.ID,
				"receive_count", m.ReceiveCount, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = &panicError{value: r}
		}
	}()
	return w.p.Process(ctx, m)
}

type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("processor panicked: %v", e.value) }

// drain waits for the jobs within the drain window, then cancels them and
// releases whatever is still held by a job.
func (w *Worker) drain(jobsDone <-chan struct{}, cancelJobs context.CancelFunc) {
	window, stopWindow := w.timers.After(w.cfg.DrainTimeout)
	defer stopWindow()
	select {
	case <-jobsDone:
		return
	case <-window:
	}
	w.mu.Lock()
	w.cancelled = true
	running := 0
	for _, it := range w.held {
		if it.state.running() {
			running++
		}
	}
	w.mu.Unlock()
	w.log.Warn("drain timeout: cancelling running jobs", "running", running, "drain_timeout", w.cfg.DrainTimeout)
	cancelJobs()

	grace, stopGrace := w.timers.After(w.cancelGrace)
	defer stopGrace()
	select {
	case <-jobsDone:
	case <-grace:
		w.log.Error("jobs ignored cancellation; releasing their messages anyway", "grace", w.cancelGrace)
	}

	var left, lost []*inflight
	w.mu.Lock()
	for _, it := range w.held {
		was := it.state
		if !it.on(evAbandon) {
			continue // settled: its own settle call ends it
		}
		if was == msgLost {
			// Already left to reappear (see settleLost): nothing to release.
			lost = append(lost, it)
		} else {
			left = append(left, it)
		}
	}
	w.mu.Unlock()
	for _, it := range lost {
		w.drop(it)
	}
	w.releaseNow(left)
}

// drop forgets a settled message and frees its slot.
func (w *Worker) drop(it *inflight) {
	w.mu.Lock()
	_, ok := w.held[it.msg.receiptHandle]
	delete(w.held, it.msg.receiptHandle)
	if ok {
		w.heldChanged()
	}
	if ok && it.deleting {
		w.deleting--
	}
	w.mu.Unlock()
	if !ok {
		return
	}
	w.stats.inFlight.Add(-1)
	select {
	case w.slotFreed <- struct{}{}:
	default:
	}
}

// heldChanged tells the held hook the new count; w.mu is held.
func (w *Worker) heldChanged() {
	if w.heldHook != nil {
		w.heldHook(len(w.held))
	}
}

// callCtx is the context of one settle call: alive after Run's context is
// cancelled, but bounded.
func (w *Worker) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(w.base, callTimeout)
}

// toMessage converts an SQS message. Missing or malformed system attributes
// leave ReceiveCount 0 and SentAt zero rather than failing the message.
func toMessage(m types.Message, receivedAt time.Time) Message {
	msg := Message{
		ID:            aws.ToString(m.MessageId),
		Body:          []byte(aws.ToString(m.Body)),
		ReceivedAt:    receivedAt,
		receiptHandle: aws.ToString(m.ReceiptHandle),
	}
	if n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
		msg.ReceiveCount = n
	}
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		msg.SentAt = time.UnixMilli(ms)
	}
	for name, v := range m.MessageAttributes {
		// String and Number attributes (and their custom subtypes) carry a
		// StringValue; binary ones are not part of Message.
		if v.StringValue == nil {
			continue
		}
		if msg.Attributes == nil {
			msg.Attributes = make(map[string]string, len(m.MessageAttributes))
		}
		msg.Attributes[name] = *v.StringValue
	}
	return msg
}
