package emulator_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tierq/tierq/internal/emulator"
)

// url is the one emulator of this test binary.
var url string

func TestMain(m *testing.M) { os.Exit(emulator.RunTests(m, &url)) }

// named stands in for a *testing.T with any name.
type named string

func (n named) Name() string { return string(n) }

// validBucket is S3's rule for bucket names (without dots, which we never use).
var validBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

func TestName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Abc", 40)
	tests := []struct {
		name, test, prefix string
		want               *regexp.Regexp
	}{
		{"plain", "TestWorker", "jobs", regexp.MustCompile(`^jobs-testworker-\d+$`)},
		{"subtest characters collapse", "TestX/Some_Case#01", "b", regexp.MustCompile(`^b-testx-some-case-01-\d+$`)},
		{"keeps the end of a long test name", "Test" + long + "/tail", "p", regexp.MustCompile(`^p-[a-z]{1,40}-tail-\d+$`)},
		{"no prefix", "TestY", "", regexp.MustCompile(`^testy-\d+$`)},
		{"prefix cleaned", "TestZ", "--My Bucket--", regexp.MustCompile(`^my-bucket-testz-\d+$`)},
		{"huge prefix still fits", "TestZ", long, regexp.MustCompile(`^abc[a-z]*-\d+$`)},
		{"nothing usable", "__", "", regexp.MustCompile(`^tq-\d+$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := emulator.Name(named(tt.test), tt.prefix)
			if !tt.want.MatchString(got) {
				t.Errorf("Name(%q, %q) = %q, want match for %s", tt.test, tt.prefix, got, tt.want)
			}
			if !validBucket.MatchString(got) {
				t.Errorf("Name(%q, %q) = %q (%d chars), not a valid bucket name", tt.test, tt.prefix, got, len(got))
			}
			if again := emulator.Name(named(tt.test), tt.prefix); again == got {
				t.Errorf("Name(%q, %q) returned %q twice", tt.test, tt.prefix, got)
			}
		})
	}
}

// TestClients round-trips through both clients: a missing setting (path
// style, checksums) fails here rather than in every package's tests.
func TestClients(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	q := emulator.SQS(url)
	name := emulator.Name(t, "q")
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: created.QueueUrl}) })
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: created.QueueUrl, MessageBody: aws.String("hi")}); err != nil {
		t.Fatalf("send: %v", err)
	}
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: created.QueueUrl, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "hi" {
		t.Fatalf("received %+v, want one message with body hi", out.Messages)
	}

	s := emulator.S3(url)
	bucket := emulator.Name(t, "b")
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	body := []byte("payload")
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer got.Body.Close()
	data, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if !bytes.Equal(data, body) {
		t.Errorf("got object %q, want %q", data, body)
	}
}

func ExampleS3() {
	ctx := context.Background()
	// url comes from emulator.Start in TestMain: one server per process,
	// since a second kumo.NewServer races with the first one's S3 work.
	client := emulator.S3(url)
	bucket := aws.String("example-results")
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		fmt.Println("create bucket:", err)
		return
	}
	// Every kumo instance in the process shares one store: clean up.
	defer client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bucket})
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: bucket}); err != nil {
		fmt.Println("head bucket:", err)
		return
	}
	fmt.Println("bucket ready")
	// Output: bucket ready
}
