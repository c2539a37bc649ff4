package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/pipeline"
)

// opCounter counts the requests an SDK client sends, by operation, through
// the SDK's own middleware stack: what S3 bills, not what our code meant to
// call (a retried request counts each time).
type opCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *opCounter) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("tierq-count", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		c.mu.Lock()
		c.n[awsmiddleware.GetOperationName(ctx)]++
		c.mu.Unlock()
		return next.HandleFinalize(ctx, in)
	}), middleware.After)
}

func (c *opCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countedS3 is an S3 client on kumo whose requests are counted.
func countedS3() (*s3.Client, *opCounter) {
	c := &opCounter{n: map[string]int{}}
	base := emulator.S3(kumoURL)
	return s3.New(base.Options(), func(o *s3.Options) { o.APIOptions = append(o.APIOptions, c.middleware) }), c
}

// TestS3RequestsPerJob measures what the exactly-once machinery costs in S3
// requests: a new job makes a claim and a result write; a redelivery of a
// finished job makes the claim write that finds the claim there, and the
// result check that finds the result.
func TestS3RequestsPerJob(t *testing.T) {
	t.Parallel()
	client, count := countedS3()
	e := newEnv(t, envOpts{store: func(pipeline.Store) pipeline.Store { return client }})
	body := readJob(t, "job-summarize.json") // an inline document: no GetObject
	count.take()
	e.process(body)
	first := count.take()
	e.process(body)
	again := count.take()
	t.Logf("S3 requests for a new job: %v; for a redelivery of a finished job: %v", first, again)
	if want := map[string]int{"PutObject": 2}; fmt.Sprint(first) != fmt.Sprint(want) {
		t.Errorf("new job: %v, want %v (claim, result)", first, want)
	}
	if want := map[string]int{"HeadObject": 1, "PutObject": 1}; fmt.Sprint(again) != fmt.Sprint(want) {
		t.Errorf("redelivery: %v, want %v (the claim write finds the claim, the result check the result)", again, want)
	}
	if got := e.modelRequests(economyModel); got != 1 {
		t.Errorf("model saw %d requests, want 1", got)
	}
}

// TestInvalidJobLeavesAClaim: a job answered with a failed result without a
// model call still leaves a claim, so a later delivery under the same job ID
// (upstream resending it, fixed) finds the claim, then the result, and is
// acknowledged without calling the model.
func TestInvalidJobLeavesAClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.process([]byte(`{"version":"1","job_id":"resent-0001","task":"summarize"}`))
	first := e.rawResult("resent-0001")
	e.process([]byte(`{"version":"1","job_id":"resent-0001","task":"summarize","text":"Sales rose in the north."}`))
	if got := e.modelRequests(economyModel); got != 0 {
		t.Errorf("model saw %d requests, want 0: the job has a result", got)
	}
	if again := e.rawResult("resent-0001"); string(again) != string(first) {
		t.Error("the later delivery changed the failed result")
	}
	if st := e.p.Stats(); st.Duplicates != 1 || st.Failed != 1 {
		t.Errorf("stats = %+v, want 1 failed and 1 duplicate", st)
	}
}

// TestClaimEndsWhenTheJobIsReleased: a delivery that gives its job back
// ends its claim's lease, so the next delivery runs at once instead of
// waiting the lease out.
func TestClaimEndsWhenTheJobIsReleased(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	if err := e.sim.SetFaults(economyModel, bedrocksim.Faults{ServiceUnavailable: 1}); err != nil {
		t.Fatal(err)
	}
	body := readJob(t, "job-summarize.json")
	if err := e.p.Process(context.Background(), message(body)); err == nil {
		t.Fatal("first delivery: nil, want a release (every attempt failed)")
	}
	if err := e.sim.SetFaults(economyModel, bedrocksim.Faults{}); err != nil {
		t.Fatal(err)
	}
	e.process(body) // would be deferred if the claim still held
	if r := e.result("example-summarize-0001"); r.Status != jobv1.StatusSucceeded {
		t.Errorf("status %s, want succeeded on the second delivery", r.Status)
	}
}

// TestClaimOfADeadWorkerIsTakenOver: a claim whose lease ended (its worker
// was killed) holds the job no longer.
func TestClaimOfADeadWorkerIsTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	stale := fmt.Sprintf(`{"job_id":"example-summarize-0001","worker":"dead","lease_until":%q}`, t0.Add(-time.Minute).Format(time.RFC3339Nano))
	putObject(t, e.s3, e.results, jobv1.ClaimKey(pipeline.DefaultResultsPrefix, "example-summarize-0001"), []byte(stale))
	e.process(readJob(t, "job-summarize.json"))
	if r := e.result("example-summarize-0001"); r.Status != jobv1.StatusSucceeded {
		t.Errorf("status %s, want succeeded", r.Status)
	}
	live := fmt.Sprintf(`{"job_id":"example-classify-0001","worker":"alive","lease_until":%q}`, t0.Add(time.Hour).Format(time.RFC3339Nano))
	putObject(t, e.s3, e.results, jobv1.ClaimKey(pipeline.DefaultResultsPrefix, "example-classify-0001"), []byte(live))
	if err := e.p.Process(context.Background(), message(readJob(t, "job-classify.json"))); err == nil {
		t.Fatal("a job with a live claim ran; want it released")
	}
	if got := e.modelRequests(economyModel); got != 1 {
		t.Errorf("model saw %d requests, want 1 (the taken-over job only)", got)
	}
}

// TestManyCopiesAcrossThreeWorkers sends every job several times, in the same
// receive batches and across three workers on one queue: each job is
// answered by exactly one model call, and each has exactly one result.
func TestManyCopiesAcrossThreeWorkers(t *testing.T) {
	t.Parallel()
	const jobs, copies, workers = 24, 4, 3
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sim, br := startSim(t, bedrocksim.DefaultConfig())
	s3c := emulator.S3(kumoURL)
	sqsc := emulator.SQS(kumoURL)
	results := emulator.Name(t, "results")
	createBucket(t, s3c, results)
	queue, dlq := createQueues(ctx, t, sqsc, emulator.Name(t, "jobs"))

	var bodies [][]byte
	for i := range jobs {
		b := []byte(fmt.Sprintf(`{"version":"1","job_id":"dup-%02d","task":"summarize","text":"Report %d. Sales rose in the north. Costs fell in the south."}`, i, i))
		for range copies {
			bodies = append(bodies, b)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	for i := 0; i < len(bodies); i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j, b := range bodies[i:min(i+10, len(bodies))] {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(string(b))})
		}
		if _, err := sqsc.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queue), Entries: entries}); err != nil {
			t.Fatal(err)
		}
	}

	logs := &testenv.Buffer{}
	runCtx, stop := context.WithCancel(ctx)
	g, _ := errgroup.WithContext(runCtx)
	for i := range workers {
		w, err := app.New(app.Settings{
			QueueURL: queue, DeadLetterQueueURL: dlq, ResultsBucket: results, WorkerID: fmt.Sprintf("w%d", i),
			Concurrency: 6, WaitTime: time.Second, VisibilityTimeout: 20 * time.Second, ClaimLease: 2 * time.Second,
			ReleaseDelay: time.Second, DrainTimeout: 5 * time.Second,
		}, app.Clients{Queue: sqsc, Store: s3c, Converser: br}, io.Discard, slog.New(slog.NewJSONHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		g.Go(func() error { return w.Run(runCtx) })
	}
	if err := emulator.WaitDrained(ctx, sqsc, queue, 50*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	attempts := 0
	for i := range jobs {
		id := fmt.Sprintf("dup-%02d", i)
		r := readResult(ctx, t, s3c, results, id)
		if r.Status != jobv1.StatusSucceeded {
			t.Errorf("%s: status %s", id, r.Status)
		}
		attempts += r.Attempts
	}
	calls := sim.Stats().Models[economyModel].Requests
	t.Logf("%d jobs × %d copies on %d workers: %d model calls, %d attempts in results", jobs, copies, workers, calls, attempts)
	if calls != jobs || attempts != jobs {
		t.Errorf("model saw %d calls and results record %d attempts; want %d, one per job", calls, attempts, jobs)
	}
}

// createQueues makes a queue and its dead-letter queue on kumo.
func createQueues(ctx context.Context, t *testing.T, c *sqs.Client, name string) (queue, dlq string) {
	t.Helper()
	d, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(d.QueueUrl)
}

func readResult(ctx context.Context, t *testing.T, c *s3.Client, bucket, jobID string) jobv1.Result {
	t.Helper()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(jobv1.ResultKey(pipeline.DefaultResultsPrefix, jobID))})
	if err != nil {
		t.Fatalf("result of %s: %v", jobID, err)
	}
	defer out.Body.Close()
	var r jobv1.Result
	if err := json.NewDecoder(out.Body).Decode(&r); err != nil {
		t.Fatalf("result of %s: %v", jobID, err)
	}
	return r
}
