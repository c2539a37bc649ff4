package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/worker"
)

// errDead is every AWS call of a killed worker.
var errDead = errors.New("the process was killed")

// killable passes calls to the real clients until killed, then fails them
// all: a worker whose process died makes no call any more, so it neither
// extends its messages' visibility nor renews or ends its claims.
type killable struct {
	q     worker.Queue
	s     pipeline.Store
	dead  atomic.Bool
	calls chan struct{} // closed when a model call starts
	once  atomic.Bool
}

func (k *killable) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if k.dead.Load() {
		<-ctx.Done() // a dead process receives nothing
		return nil, ctx.Err()
	}
	return k.q.ReceiveMessage(ctx, in, o...)
}

func (k *killable) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.q.DeleteMessageBatch(ctx, in, o...)
}

func (k *killable) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.q.ChangeMessageVisibility(ctx, in, o...)
}

func (k *killable) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.q.ChangeMessageVisibilityBatch(ctx, in, o...)
}

func (k *killable) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.q.SendMessage(ctx, in, o...)
}

func (k *killable) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.s.GetObject(ctx, in, o...)
}

func (k *killable) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.s.HeadObject(ctx, in, o...)
}

func (k *killable) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.s.PutObject(ctx, in, o...)
}

// Converse never answers: the killed worker was in the middle of the call.
func (k *killable) Converse(ctx context.Context, _ *bedrockruntime.ConverseInput, _ ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	if k.once.CompareAndSwap(false, true) {
		close(k.calls)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestKilledWorkersJobRecoversWithinTheVisibilityTimeout kills a worker in
// the middle of a model call (its process makes no call any more: no
// release, no claim renewal or hand-back) and measures how soon another
// worker writes the job's result. The bound is the visibility timeout (the
// claim lease follows it, so the redelivered message is not deferred) plus
// the long-poll wait, scaled down here to a 2s visibility timeout.
func TestKilledWorkersJobRecoversWithinTheVisibilityTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("kumo, the simulator and a few seconds of waiting")
	}
	t.Parallel()
	const vis, wait = 2 * time.Second, time.Second
	e := newCheckEnv(t, nil)
	ctx := t.Context()
	sqsc := e.clients.QueueInfo.(*sqs.Client)
	s3c := e.clients.Store.(*s3.Client)
	if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.settings.QueueURL),
		MessageBody: aws.String(`{"version":"1","job_id":"killed-1","task":"summarize","text":"Recover me."}`)}); err != nil {
		t.Fatal(err)
	}
	settings := e.settings
	settings.VisibilityTimeout, settings.WaitTime, settings.ReleaseDelay, settings.DrainTimeout = vis, wait, time.Second, time.Second
	logs := &testenv.Buffer{}
	start := func(name string, c app.Clients) (stop func()) {
		s := settings
		s.WorkerID = name
		w, err := app.New(s, c, io.Discard, app.NewLogger(logs, slog.LevelInfo).With("worker", name))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(runCtx) }()
		return func() { cancel(); <-done }
	}

	a := &killable{q: sqsc, s: s3c, calls: make(chan struct{})}
	stopA := start("a", app.Clients{Queue: a, Store: a, Converser: a})
	defer stopA()
	select {
	case <-a.calls:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker a never called the model:\n%s", logs.String())
	}
	// Let a heartbeat extend the message and a renewal extend the claim, so
	// both run close to their full length after the kill.
	time.Sleep(vis * 6 / 10)
	a.dead.Store(true)
	killed := time.Now()

	stopB := start("b", app.Clients{Queue: sqsc, Store: s3c, Converser: e.converse.next})
	defer stopB()
	bound := vis + wait + time.Second // + a second for the deferral's rounding
	for {
		_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(settings.ResultsBucket), Key: aws.String("results/killed-1.json")})
		if err == nil {
			break
		}
		if time.Since(killed) > 3*bound {
			t.Fatalf("no result %v after the kill:\n%s", time.Since(killed), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("a killed worker's job had its result %v after the kill (visibility timeout %v, bound %v)", took.Round(10*time.Millisecond), vis, bound)
	if took > bound {
		t.Errorf("recovery took %v, want at most %v (visibility timeout + long-poll wait + 1s):\n%s", took, bound, logs.String())
	}
}
