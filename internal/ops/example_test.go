package ops_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/ops"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

// Redrive moves the dead letters the job queue's redrive policy put there
// (class no_reason: jobs released too many times during an outage) back
// to the job queue, and leaves the messages that are not jobs where they
// are.
func ExampleRedrive() {
	ctx := context.Background()
	q := emulator.SQS(kumoURL) // in tierq redrive: sqs.NewFromConfig
	jobs, _ := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("example-redrive-jobs")})
	dlq, _ := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("example-redrive-dlq")})
	defer q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: jobs.QueueUrl})
	defer q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: dlq.QueueUrl})
	for _, body := range []string{`{"version":"1","job_id":"a","task":"summarize","text":"..."}`, `{"version":"1","job_id":"b","task":"summarize","text":"..."}`} {
		q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: dlq.QueueUrl, MessageBody: aws.String(body)})
	}
	q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: dlq.QueueUrl, MessageBody: aws.String("not a job"),
		MessageAttributes: map[string]types.MessageAttributeValue{worker.AttrDeadLetterReason: {
			DataType: aws.String("String"), StringValue: aws.String("message 1 is not a job: " + jobv1.ErrMalformed.Error())}}})

	sum, err := ops.Redrive(ctx, ops.RedriveConfig{
		Queue: q, DLQURL: aws.ToString(dlq.QueueUrl), QueueURL: aws.ToString(jobs.QueueUrl),
		Reason: ops.ReasonNone, Hide: 5 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ops.WriteRedrive(os.Stdout, sum, false, time.Now())
	// Output: moved 2, skipped 1, failed 0
}

func ExampleWriteResult() {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	r := jobv1.Result{JobID: "example-classify-0001", Status: jobv1.StatusSucceeded, Task: "classify",
		Tier: "economy", TierRule: "task-classify", TierReason: "classify of about 40 tokens fits economy",
		ModelID: "us.amazon.nova-micro-v1:0", ServiceTier: "default", StopReason: "end_turn",
		Usage: jobv1.Usage{InputTokens: 180, OutputTokens: 2},
		Cost:  jobv1.Cost{InputUSD: 0.0000063, OutputUSD: 0.00000028, TotalUSD: 0.00000658},
		Calls: []jobv1.Call{{At: at, Tier: "economy", ModelID: "us.amazon.nova-micro-v1:0", ServiceTier: "default",
			Usage: jobv1.Usage{InputTokens: 180, OutputTokens: 2}, Cost: jobv1.Cost{TotalUSD: 0.00000658}}},
		Attempts: 1,
		Timings: jobv1.Timings{EnqueuedAt: at.Add(-1500 * time.Millisecond), StartedAt: at.Add(-400 * time.Millisecond),
			FinishedAt: at, QueueMs: 1100, ModelMs: 350, TotalMs: 400},
		Worker:   jobv1.WorkerInfo{ID: "worker-1", Version: "dev", ReceiveCount: 1},
		Output:   &jobv1.Output{Text: "billing"},
		Metadata: map[string]string{"tenant": "acme"},
	}
	ops.WriteResult(os.Stdout, r, ops.DefaultOutputChars)
	// Output:
	// job          example-classify-0001
	// status       succeeded
	// task         classify
	// tier         economy (rule task-classify: classify of about 40 tokens fits economy)
	// model        us.amazon.nova-micro-v1:0, service tier default
	// stop reason  end_turn
	// cost         0.00000658 USD (input 0.0000063, output 0.00000028, cache read 0, cache write 0, guardrail 0)
	// usage        input 180, output 2, cache read 0, cache write 0 tokens; guardrail text units: content 0, topics 0, sensitive info 0, word 0
	// attempts     1 model call(s), 1 answered
	//              1. 2026-11-30T10:00:00.000Z economy on us.amazon.nova-micro-v1:0 (default): in 180, out 2 tokens, 0.00000658 USD
	// timings      enqueued 2026-11-30T09:59:58.500Z, started 2026-11-30T09:59:59.600Z, finished 2026-11-30T10:00:00.000Z; queue 1100 ms, model 350 ms, total 400 ms
	// worker       worker-1 (version dev), delivery 1
	// metadata     tenant=acme
	// output:
	//   billing
}
