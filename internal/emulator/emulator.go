package emulator

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"
)

// Region is the region the clients sign for. The emulators accept any; a
// fixed one keeps the SDK from looking for it in the environment.
const Region = "us-east-1"

// credentialsProvider signs every request with static test keys: the
// emulators do not check signatures, and static keys keep the SDK from
// reading a developer's real credentials or calling IMDS.
var credentialsProvider = credentials.NewStaticCredentialsProvider("test", "test", "")

// Start serves SQS and S3 on a loopback port and returns its URL and a stop
// function. Call it once per process (TestMain, a dev entry point): every
// kumo instance shares one storage anyway, and kumo.NewServer races with
// other instances' work (parallel tests; S3 writes still notifying), as the
// race detector shows.
func Start() (url string, stop func()) {
	srv := kumo.NewServer()
	return srv.URL, srv.Close
}

// RunTests is the body of a TestMain whose tests share one emulator: it
// starts it, sets *url to its URL, runs the tests and stops it.
//
//	func TestMain(m *testing.M) { os.Exit(emulator.RunTests(m, &kumoURL)) }
//
// m is any *testing.M; taking only its Run method keeps the testing package
// out of binaries that use this package's clients (the demo stack).
func RunTests(m interface{ Run() int }, url *string) int {
	u, stop := Start()
	defer stop()
	*url = u
	return m.Run()
}

// SQS returns an SQS client for the emulator at endpoint.
//
// Always pass the emulator's endpoint, never one derived from a queue URL:
// kumo returns queue URLs on localhost:4566 whatever port it listens on, and
// the SDK's JSON protocol sends every call to BaseEndpoint regardless.
func SQS(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentialsProvider,
	})
}

// S3 returns an S3 client for the emulator at endpoint.
func S3(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentialsProvider,
		// Virtual-host addressing would put the bucket in the host name
		// (bucket.127.0.0.1), which does not resolve.
		UsePathStyle: true,
		// The emulators serve plain HTTP and do not verify aws-chunked
		// checksum trailers (HTTPS uploads are silently corrupted), nor do
		// they return checksums (the SDK would log on every GetObject):
		// send and check checksums only where an operation requires them.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Name limits: S3 bucket names are 3 to 63 characters (SQS allows 80, so a
// name that fits a bucket also fits a queue with a "-dlq" suffix). The test
// name part keeps its last characters, where subtest names differ.
const (
	maxName     = 63
	maxTestPart = 40
)

// seq makes names unique across the process: kumo keeps one store per
// process, shared by every test and every kumo instance in it.
var seq atomic.Int64

// notNameChars are runs of characters S3 bucket names do not allow (SQS
// allows more, but one rule serves both).
var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// Name returns a queue or bucket name unique in the process: prefix, the
// end of the test's name and a counter, lower case, made only of [a-z0-9-],
// starting and ending with a letter or digit, at most 63 characters. It
// takes only the Name method of testing.TB so that the demo stack can use
// this package without linking the testing package.
func Name(t interface{ Name() string }, prefix string) string {
	suffix := strconv.FormatInt(seq.Add(1), 10)
	p := clean(prefix)
	s := clean(t.Name())
	s = tail(s, maxTestPart)
	if p == "" && s == "" {
		p = "tq" // a bucket name needs at least 3 characters
	}
	// Joined with "-": p, s and the suffix must fit in maxName.
	room := maxName - len(suffix) - 1
	if p != "" && len(p) > room-1 {
		p = strings.Trim(p[:max(room-1, 0)], "-")
	}
	if p != "" {
		room -= len(p) + 1
	}
	s = tail(s, room)
	parts := make([]string, 0, 3)
	for _, x := range []string{p, s, suffix} {
		if x != "" {
			parts = append(parts, x)
		}
	}
	return strings.Join(parts, "-")
}

// clean lower-cases s and turns every run of other characters into one "-".
func clean(s string) string {
	return strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// tail keeps the last n bytes of a cleaned s (all ASCII), without an edge "-".
func tail(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.Trim(s, "-")
}

// QueueDepth is how many messages a queue holds: visible, in flight and
// delayed. Zero means every message sent has been deleted.
func QueueDepth(ctx context.Context, c *sqs.Client, url string) (int, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return 0, fmt.Errorf("read queue depth: %w", err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("read queue depth: %q is not a count", v)
		}
		n += k
	}
	return n, nil
}

// WaitDrained polls a queue until it is empty twice in a row (every message
// sent has been deleted), timeout passes or ctx ends. progress, if not nil,
// is told the depth after every poll.
func WaitDrained(ctx context.Context, c *sqs.Client, url string, timeout time.Duration, progress func(left int) error) error {
	deadline := time.Now().Add(timeout)
	empty := 0
	for {
		n, err := QueueDepth(ctx, c, url)
		if err != nil {
			return err
		}
		if progress != nil {
			if err := progress(n); err != nil {
				return err
			}
		}
		if n == 0 {
			empty++
		} else {
			empty = 0
		}
		if empty >= 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the queue did not drain within %s: %d messages left", timeout, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Bedrock returns a Bedrock Runtime client for the simulator at endpoint
// (tierq sim, or bedrocksim.Server behind an httptest server). It tries each
// call once, as the worker's client does: retries are tierq's own.
func Bedrock(endpoint string) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		Region:           Region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentialsProvider,
		RetryMaxAttempts: 1,
	})
}

// ReadAll reads and deletes every message of a queue, calling each once per
// message, until the queue is empty or timeout passes. Each receive hides
// its messages for 2 s only: now and then a receive's response is cut off on
// the client side and the SDK retries, and the messages of the lost
// response then come back 2 s later instead of staying hidden for a whole
// visibility timeout. A message seen twice is passed to each once.
func ReadAll(ctx context.Context, c *sqs.Client, url string, timeout time.Duration, each func(sqstypes.Message)) error {
	deadline := time.Now().Add(timeout)
	seen := map[string]bool{}
	for {
		left, err := QueueDepth(ctx, c, url)
		if err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d messages could not be read within %s", left, timeout)
		}
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, VisibilityTimeout: 2, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		var done []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			done = append(done, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
			if id := aws.ToString(m.MessageId); !seen[id] {
				seen[id] = true
				each(m)
			}
		}
		if len(done) > 0 {
			if _, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: done}); err != nil {
				return fmt.Errorf("delete read messages: %w", err)
			}
		}
	}
}
