package demo

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
)

// Stack is the embedded AWS: kumo serving SQS and S3, and the Bedrock
// simulator, each on a loopback port, with real SDK clients pointed at them.
type Stack struct {
	SQS     *sqs.Client
	S3      *s3.Client
	Bedrock *bedrockruntime.Client
	Sim     *bedrocksim.Server

	stopKumo func()
	simSrv   *httptest.Server
}

// NewStack starts the emulators. kumo keeps one store per process, so callers
// give every queue and bucket a name of its own.
func NewStack(simCfg bedrocksim.Config) (*Stack, error) {
	sim, err := bedrocksim.New(simCfg)
	if err != nil {
		return nil, err
	}
	kumoURL, stopKumo := emulator.Start()
	st := &Stack{Sim: sim, stopKumo: stopKumo, simSrv: httptest.NewServer(sim)}
	st.SQS = emulator.SQS(kumoURL)
	st.S3 = emulator.S3(kumoURL)
	st.Bedrock = emulator.Bedrock(st.simSrv.URL)
	return st, nil
}

// Close stops the emulators.
func (st *Stack) Close() {
	st.simSrv.Close()
	st.stopKumo()
}

// Queues are a job queue and its dead-letter queue.
type Queues struct {
	URL, DLQURL string
}

// CreateQueues creates name and name-dlq, with a redrive policy sending a
// message to the dead-letter queue after maxReceive deliveries.
func (st *Stack) CreateQueues(ctx context.Context, name string, maxReceive int) (Queues, error) {
	dlq, err := st.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return Queues{}, fmt.Errorf("create dead-letter queue: %w", err)
	}
	attrs, err := st.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return Queues{}, fmt.Errorf("read dead-letter queue ARN: %w", err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, attrs.Attributes["QueueArn"], maxReceive)
	q, err := st.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name),
		Attributes: map[string]string{"RedrivePolicy": redrive, "VisibilityTimeout": "60"}})
	if err != nil {
		return Queues{}, fmt.Errorf("create queue: %w", err)
	}
	return Queues{URL: *q.QueueUrl, DLQURL: *dlq.QueueUrl}, nil
}

// CreateBuckets creates each bucket.
func (st *Stack) CreateBuckets(ctx context.Context, names ...string) error {
	for _, b := range names {
		if _, err := st.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}
