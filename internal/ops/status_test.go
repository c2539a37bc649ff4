package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/ops"
	"github.com/tierq/tierq/jobv1"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// results are six results over 5 minutes: 3 succeeded (economy, economy,
// standard), 1 blocked, 2 failed.
func results() []jobv1.Result {
	r := func(id, status, tier string, in, out int, cost float64, finished time.Duration) jobv1.Result {
		return jobv1.Result{JobID: id, Status: status, Tier: tier, Usage: jobv1.Usage{InputTokens: in, OutputTokens: out},
			Cost: jobv1.Cost{TotalUSD: cost}, Timings: jobv1.Timings{FinishedAt: t0.Add(finished)}}
	}
	failed := func(id, code string, finished time.Duration) jobv1.Result {
		x := r(id, jobv1.StatusFailed, "", 0, 0, 0, finished)
		x.Error = &jobv1.ErrorInfo{Code: code, Message: "m"}
		return x
	}
	return []jobv1.Result{
		r("s1", jobv1.StatusSucceeded, "economy", 100, 10, 0.001, 0),
		r("s2", jobv1.StatusSucceeded, "economy", 200, 20, 0.002, time.Minute),
		r("s3", jobv1.StatusSucceeded, "standard", 1000, 100, 0.05, 2*time.Minute),
		r("b1", jobv1.StatusBlocked, "economy", 50, 0, 0.0005, 3*time.Minute),
		failed("f1", jobv1.CodeInvalidJob, 4*time.Minute),
		failed("f2", jobv1.CodeInvalidJob, 5*time.Minute),
	}
}

func TestCollect(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	q, dlq, bucket := newQueue(t, "jobs"), newQueue(t, "dlq"), newBucket(t)
	const prefix = "results/"
	client := emulator.SQS(kumoURL)
	for i := range 3 {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(job(fmt.Sprint("q", i)))}); err != nil {
			t.Fatal(err)
		}
	}
	// One of them in flight.
	if _, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 1, VisibilityTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, dlq, "not json", notJSONReason, nil)
	deadLetter(t, dlq, `{"version":"9"}`, versionReason, nil)
	deadLetter(t, dlq, `{"version":"7"}`, strings.Replace(versionReason, "9", "7", 1), nil)
	deadLetter(t, dlq, job("stuck"), "", nil)
	for _, r := range results() {
		putResult(t, bucket, prefix, r)
	}
	put(t, bucket, prefix+"s1.claim", []byte(`{}`))          // claim with a result
	put(t, bucket, prefix+"running.claim", []byte(`{}`))     // claim without one
	put(t, bucket, prefix+"broken.json", []byte(`{"versi`))  // not a result
	put(t, bucket, prefix+"notes.txt", []byte(`x`))          // something else
	put(t, bucket, "elsewhere/x.json", []byte(`{"nope":1}`)) // outside the prefix

	var progress strings.Builder
	st, err := ops.Collect(ctx, ops.StatusConfig{Queue: client, QueueURL: q, DLQURL: dlq, Store: emulator.S3(kumoURL),
		Bucket: bucket, Prefix: prefix, DLQScan: -1, Hide: 10 * time.Second, Progress: &progress, ProgressEvery: 3,
		Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if got := st.Queue; got.Visible != 2 || got.InFlight != 1 || got.Delayed != 0 || got.OldestAgeSeconds != nil || !strings.HasPrefix(got.OldestAgeSource, "unknown") {
		t.Errorf("queue %+v; want 2 visible, 1 in flight, age unknown", got)
	}
	d := st.DeadLetters
	if d.Visible != 4 || d.Read != 4 || !d.Complete {
		t.Errorf("dead letters %+v; want 4 visible, 4 read, complete", d)
	}
	want := []ops.ReasonCount{{ops.ReasonVersion, 2, versionReason}, {ops.ReasonNone, 1, ""}, {ops.ReasonNotJSON, 1, notJSONReason}}
	if fmt.Sprint(d.Reasons) != fmt.Sprint(want) {
		t.Errorf("reasons %v\nwant    %v", d.Reasons, want)
	}
	if d.OldestSentAt == nil || time.Since(*d.OldestSentAt) > time.Minute {
		t.Errorf("oldest dead letter sent at %v, want about now", d.OldestSentAt)
	}
	// Read, not consumed: all four come back at once, each with one more
	// receive.
	if n := receivable(t, dlq); n != 4 {
		t.Errorf("%d dead letters receivable after status, want 4 (made visible again)", n)
	}

	r := st.Results
	if r.Results != 6 || r.Unreadable != 1 || r.ClaimsWithoutResult != 1 || r.Other != 1 {
		t.Errorf("results %d, unreadable %d, claims without result %d, other %d; want 6, 1, 1, 1", r.Results, r.Unreadable, r.ClaimsWithoutResult, r.Other)
	}
	wantStatus := "[{succeeded 3 1300 130 0.053} {blocked 1 50 0 0.0005} {failed 2 0 0 0}]"
	if got := fmt.Sprint(rounded(r.ByStatus)); got != wantStatus {
		t.Errorf("by status %s, want %s", got, wantStatus)
	}
	wantTier := "[{economy 3 350 30 0.0035} {none 2 0 0 0} {standard 1 1000 100 0.05}]"
	if got := fmt.Sprint(rounded(r.ByTier)); got != wantTier {
		t.Errorf("by tier %s, want %s", got, wantTier)
	}
	if fmt.Sprint(r.FailedByCode) != "[{invalid_job 2}]" {
		t.Errorf("failed by code %v", r.FailedByCode)
	}
	if math.Abs(r.TotalCostUSD-0.0535) > 1e-12 {
		t.Errorf("total cost %v, want 0.0535", r.TotalCostUSD)
	}
	// 6 results over 5 minutes.
	if r.JobsPerMinute == nil || math.Abs(*r.JobsPerMinute-1.2) > 1e-9 {
		t.Errorf("jobs per minute %v, want 1.2", r.JobsPerMinute)
	}
	if p := progress.String(); !strings.Contains(p, "status: read 3 result objects (") || !strings.Contains(p, "status: read 6 result objects (") ||
		!strings.Contains(p, "status: read 7 result objects in") {
		t.Errorf("progress lacks a line at 3 and 6 objects read, or the final line: %q", progress.String())
	}
	// JSON for scripts carries the same figures.
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"in_flight":1`, `"oldest_age_seconds":null`, `"class":"unsupported_version","count":2`, `"jobs_per_minute":1.2`, `"claims_without_result":1`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s:\n%s", s, b)
		}
	}
}

func TestCollectWithoutReadingDeadLetters(t *testing.T) {
	t.Parallel()
	q, dlq, bucket := newQueue(t, "jobs"), newQueue(t, "dlq"), newBucket(t)
	deadLetter(t, dlq, "x", notJSONReason, nil)
	st, err := ops.Collect(t.Context(), ops.StatusConfig{Queue: emulator.SQS(kumoURL), QueueURL: q, DLQURL: dlq,
		Store: emulator.S3(kumoURL), Bucket: bucket, Prefix: "results/", DLQScan: 0})
	if err != nil {
		t.Fatal(err)
	}
	if st.DeadLetters.Visible != 1 || st.DeadLetters.Read != 0 || !strings.Contains(st.DeadLetters.NotRead, "--dlq-scan 0") {
		t.Errorf("dead letters %+v; want 1 visible, none read, and why", st.DeadLetters)
	}
	if st.Results.Results != 0 || st.Results.JobsPerMinute != nil {
		t.Errorf("results %+v; want none", st.Results)
	}
	// Nothing was received: a receive gets it on its first delivery.
	out, err := emulator.SQS(kumoURL).ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), WaitTimeSeconds: 1,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil || len(out.Messages) != 1 || out.Messages[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("receive after status: %+v, %v; want the dead letter on its first receive", out, err)
	}
}

// TestCollectOldestAgeFromCloudWatch puts an ApproximateAgeOfOldestMessage
// datapoint into kumo's CloudWatch, as SQS would, and reads it back
// through the real SDK client. kumo stamps a datapoint with the time it is
// put, so the test puts one.
func TestCollectOldestAgeFromCloudWatch(t *testing.T) {
	t.Parallel()
	q, dlq, bucket := newQueue(t, "jobs"), newQueue(t, "dlq"), newBucket(t)
	cw := cloudwatch.New(cloudwatch.Options{Region: emulator.Region, BaseEndpoint: aws.String(kumoURL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		// The SDK gzips PutMetricData bodies; kumo does not read gzip.
		DisableRequestCompression: true})
	name := q[strings.LastIndex(q, "/")+1:]
	if _, err := cw.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/SQS"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("ApproximateAgeOfOldestMessage"), Value: aws.Float64(420),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("QueueName"), Value: aws.String(name)}}}}}); err != nil {
		t.Fatalf("put metric: %v", err)
	}
	st, err := ops.Collect(context.Background(), ops.StatusConfig{Queue: emulator.SQS(kumoURL), QueueURL: q, DLQURL: dlq,
		Store: emulator.S3(kumoURL), Bucket: bucket, Prefix: "results/", Metrics: cw})
	if err != nil {
		t.Fatal(err)
	}
	if a := st.Queue.OldestAgeSeconds; a == nil || *a != 420 || !strings.Contains(st.Queue.OldestAgeSource, "CloudWatch") {
		t.Errorf("oldest age %v (%s), want 420 s from CloudWatch", a, st.Queue.OldestAgeSource)
	}
	if st.DeadLetters.OldestAgeSeconds != nil || !strings.Contains(st.DeadLetters.OldestAgeSource, "no CloudWatch datapoint") {
		t.Errorf("dead-letter queue age %v (%s), want unknown for lack of datapoints", st.DeadLetters.OldestAgeSeconds, st.DeadLetters.OldestAgeSource)
	}
}

// rounded drops float noise from costs summed in any order.
func rounded(gs []ops.Group) []ops.Group {
	for i := range gs {
		gs[i].CostUSD = jobv1.RoundUSD(gs[i].CostUSD)
	}
	return gs
}
