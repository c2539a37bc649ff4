package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

// kumoURL is the one emulator of this test binary.
var kumoURL string

func TestMain(m *testing.M) { os.Exit(emulator.RunTests(m, &kumoURL)) }

// newQueue creates a queue and returns its URL.
func newQueue(t *testing.T, prefix string) string {
	t.Helper()
	q := emulator.SQS(kumoURL)
	out, err := q.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(emulator.Name(t, prefix))})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() {
		_, _ = q.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
	return aws.ToString(out.QueueUrl)
}

func newBucket(t *testing.T) string {
	t.Helper()
	b := emulator.Name(t, "results")
	if _, err := emulator.S3(kumoURL).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return b
}

func put(t *testing.T, bucket, key string, body []byte) {
	t.Helper()
	if _, err := emulator.S3(kumoURL).PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func putResult(t *testing.T, bucket, prefix string, r jobv1.Result) {
	t.Helper()
	r.Version = jobv1.ResultVersion
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	put(t, bucket, jobv1.ResultKey(prefix, r.JobID), b)
}

// deadLetter sends body to the dead-letter queue as the worker does
// (worker/deadletter.go): its reason, the source message ID and the
// receive count as attributes, beside the sender's own. reason "" sends it
// as the job queue's redrive policy would: attributes untouched.
func deadLetter(t *testing.T, dlq, body, reason string, extra map[string]types.MessageAttributeValue) {
	t.Helper()
	attrs := map[string]types.MessageAttributeValue{}
	for k, v := range extra {
		attrs[k] = v
	}
	if reason != "" {
		attrs[worker.AttrDeadLetterReason] = str(reason)
		attrs[worker.AttrSourceMessageID] = str("src-" + strconv.Itoa(len(body)))
		attrs[worker.AttrReceiveCount] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String("1")}
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(body)}
	if len(attrs) > 0 {
		in.MessageAttributes = attrs
	}
	if _, err := emulator.SQS(kumoURL).SendMessage(t.Context(), in); err != nil {
		t.Fatalf("send dead letter: %v", err)
	}
}

func str(s string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

// drain reads and deletes every message of a queue.
func drain(t *testing.T, url string) []types.Message {
	t.Helper()
	var got []types.Message
	if err := emulator.ReadAll(t.Context(), emulator.SQS(kumoURL), url, 20*time.Second, func(m types.Message) { got = append(got, m) }); err != nil {
		t.Fatalf("read queue: %v", err)
	}
	return got
}

func depth(t *testing.T, url string) int {
	t.Helper()
	n, err := emulator.QueueDepth(t.Context(), emulator.SQS(kumoURL), url)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// setRedrivePolicy gives queue url a redrive policy to target.
func setRedrivePolicy(t *testing.T, url, target string) {
	t.Helper()
	q := emulator.SQS(kumoURL)
	a, err := q.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(target),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	policy := `{"deadLetterTargetArn":"` + a.Attributes["QueueArn"] + `","maxReceiveCount":"5"}`
	if _, err := q.SetQueueAttributes(t.Context(), &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url),
		Attributes: map[string]string{"RedrivePolicy": policy}}); err != nil {
		t.Fatal(err)
	}
}
