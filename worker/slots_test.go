package worker

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// gatedDeletes holds every DeleteMessageBatch until gate closes.
type gatedDeletes struct {
	*fakeQueue
	entered chan struct{} // one send per call that reached the gate
	gate    chan struct{}
}

func (g *gatedDeletes) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.fakeQueue.DeleteMessageBatch(ctx, in, o...)
}

// TestSlotIsFreeWhileItsMessageWaitsForDelete: a succeeded job frees its
// slot at once; its message waits for the batched delete without holding
// the next job back, and is still deleted.
func TestSlotIsFreeWhileItsMessageWaitsForDelete(t *testing.T) {
	t.Parallel()
	f := &gatedDeletes{fakeQueue: newFakeQueue(3), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	cfg := fakeConfig()
	cfg.Concurrency = 2 // a full delete batch is 2 messages
	cfg.VisibilityTimeout = time.Minute
	cfg.DeleteFlushInterval = 25 * time.Second // only a full batch or the stop flushes
	third := make(chan struct{})
	w, err := New(cfg, f, ProcessorFunc(func(_ context.Context, m Message) error {
		if m.ID == "m2" {
			close(third)
		}
		return nil
	}), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	select {
	case <-f.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first two jobs' delete never started")
	}
	// The delete of m0 and m1 is stuck; their slots must be free.
	select {
	case <-third:
	case <-time.After(5 * time.Second):
		t.Fatal("the third job did not start while the first two waited for their delete: slots are held until the delete")
	}
	close(f.gate)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deleted) != 3 {
		t.Errorf("%d messages deleted, want 3", len(f.deleted))
	}
	if s := w.Stats(); s.Deleted != 3 || s.InFlight != 0 {
		t.Errorf("Stats = %+v, want 3 deleted and none in flight", s)
	}
}

// TestRoom: messages waiting for their delete hold no slot; a batch may be
// received ahead of the slots, only when a slot is idle or a whole batch
// fits; and the worker holds at most 2×Concurrency + a batch, so a stalled
// delete stops the receives instead of piling messages up.
func TestRoom(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name              string
		running, deleting int // running: running or waiting for a slot
		want              int // 0: no room
	}{
		{"idle: the slots and a batch ahead", 0, 0, 8},
		{"every slot running: a whole batch ahead fits", 4, 0, 4},
		{"less than a batch fits ahead: wait", 5, 0, 0},
		{"waiting deletes hold no slot", 1, 3, 7},
		{"slots and the batch ahead taken", 8, 0, 0},
		{"the bound on what is held", 2, 8, 2},
		{"2×Concurrency + a batch held: no more", 4, 8, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := fakeConfig()
			cfg.Concurrency = 4
			w, err := New(cfg, newFakeQueue(0), ProcessorFunc(func(context.Context, Message) error { return nil }))
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.running + c.deleting {
				it := &inflight{msg: Message{receiptHandle: "h" + strconv.Itoa(i)}, state: msgRunning}
				if i >= c.running {
					it.state, it.deleting = msgSettled, true
					w.deleting++
				}
				w.held[it.msg.receiptHandle] = it
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			n, ok := w.room(ctx)
			if !ok {
				n = 0
			}
			if n != c.want {
				t.Errorf("room = %d, want %d", n, c.want)
			}
		})
	}
}

// TestHeartbeatExtendsMessagesWaitingForDelete: a succeeded job's message
// stays invisible until its delete, like a running job's; a message released
// or dead-lettered is not extended.
func TestHeartbeatExtendsMessagesWaitingForDelete(t *testing.T) {
	t.Parallel()
	f := newFakeQueue(0)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := fakeConfig()
	cfg.VisibilityTimeout = time.Minute
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error { return nil }),
		WithClock(func() time.Time { return t0.Add(40 * time.Second) }), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	w.base = context.Background() // what Run would set
	waiting := &inflight{msg: Message{ID: "m0", receiptHandle: "h0", ReceivedAt: t0}, state: msgSettled,
		extendedAt: t0, granted: time.Minute}
	settling := &inflight{msg: Message{ID: "m1", receiptHandle: "h1", ReceivedAt: t0}, state: msgSettled,
		extendedAt: t0, granted: time.Minute}
	w.held["h0"], w.held["h1"] = waiting, settling
	w.enqueueDelete(waiting)
	w.heartbeat()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.vis) != 1 || f.vis[0].handle != "h0" || f.vis[0].secs != 60 {
		t.Errorf("extensions = %+v, want h0 (waiting for its delete) extended by 60s, and nothing else", f.vis)
	}
}

// TestSlotsKeepTheirGoroutines: jobs run on one long-lived goroutine per
// slot, not a new goroutine per message, so a goroutine's grown stack
// serves the next job.
func TestSlotsKeepTheirGoroutines(t *testing.T) {
	t.Parallel()
	const n, slots = 30, 3
	f := newFakeQueue(n)
	cfg := fakeConfig()
	cfg.Concurrency = slots
	var mu sync.Mutex
	ids := map[string]bool{}
	var done atomic.Int32
	all := make(chan struct{})
	w, err := New(cfg, f, ProcessorFunc(func(context.Context, Message) error {
		mu.Lock()
		ids[goroutineID()] = true
		mu.Unlock()
		if done.Add(1) == n {
			close(all)
		}
		return nil
	}), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w, 5*time.Second)
	select {
	case <-all:
	case <-time.After(5 * time.Second):
		t.Fatalf("%d of %d jobs ran", done.Load(), n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(ids) > slots {
		t.Errorf("%d jobs ran on %d goroutines, want at most %d (one per slot)", n, len(ids), slots)
	}
}

// goroutineID is the running goroutine's number, from its stack header
// ("goroutine 42 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _, _ := bytes.Cut(buf, []byte(" "))
	return string(id)
}
