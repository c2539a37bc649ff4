package devstack

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/awserr"
)

// Queues are a job queue and its dead-letter queue.
type Queues struct {
	URL, DLQURL string
}

// CreateQueues creates name and name-dlq, or updates them if they exist,
// with a redrive policy sending a message to the dead-letter queue after
// maxReceive deliveries and visibility as the job queue's default visibility
// timeout. Running it twice is harmless: CreateQueue of an existing queue
// returns its URL, and the attributes are then set explicitly, because SQS
// refuses a CreateQueue whose attributes differ from the existing queue's.
func CreateQueues(ctx context.Context, c *sqs.Client, name string, maxReceive int, visibility time.Duration) (Queues, error) {
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return Queues{}, fmt.Errorf("create dead-letter queue %s-dlq: %w", name, err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return Queues{}, fmt.Errorf("read dead-letter queue ARN: %w", err)
	}
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return Queues{}, fmt.Errorf("create queue %s: %w", name, err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, attrs.Attributes["QueueArn"], maxReceive)
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: q.QueueUrl, Attributes: map[string]string{
		"RedrivePolicy":     redrive,
		"VisibilityTimeout": strconv.Itoa(int(visibility / time.Second)),
	}}); err != nil {
		return Queues{}, fmt.Errorf("set redrive policy of %s: %w", name, err)
	}
	return Queues{URL: *q.QueueUrl, DLQURL: *dlq.QueueUrl}, nil
}

// CreateBuckets creates each bucket; one that exists already is kept as it is.
func CreateBuckets(ctx context.Context, c *s3.Client, names ...string) error {
	for _, b := range names {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		if err != nil && !bucketExists(err) {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

// bucketExists reports whether CreateBucket failed only because the bucket
// is there already (ours: BucketAlreadyOwnedByYou; S3 in us-east-1 answers
// 200 instead, and some emulators BucketAlreadyExists).
func bucketExists(err error) bool {
	code := awserr.Code(err)
	return code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists"
}
