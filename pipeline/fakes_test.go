package pipeline

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/tiering"
)

// Update is the -update flag of this package's tests (internal and
// external: one test binary can define a flag only once).
var Update = flag.Bool("update", false, "rewrite the golden files in testdata/results")

// sdkErr wraps an API error the way the SDK returns it: an operation error
// around a response error that carries the HTTP status.
func sdkErr(status int, err error) error {
	return &smithy.OperationError{ServiceID: "Bedrock Runtime", OperationName: "Converse",
		Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}}}
}

// fakeStore is an in-memory Store with per-operation injected errors. Like
// the SDK, every operation fails at once on a context that is done.
type fakeStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	length  map[string]*int64 // ContentLength to report, when not the real one
	headErr error
	getErr  error
	putErr  error
	// putErrs are returned by the first PutObject calls, one each, before
	// putErr applies.
	putErrs []error
	// lostPuts is how many of the first PutObject calls store the object
	// but fail as if the response was lost.
	lostPuts int
	// stallHead, stallGet and stallPut make the operation wait for its
	// context to end, as a request to an endpoint that stopped answering.
	stallHead, stallGet, stallPut bool
	puts                          int
	heads, gets                   int
	// Claims (keys ending in .claim) are kept apart: the faults and counts
	// above are about documents and results. claimPuts and claimGets count
	// their requests; etags and etag give each claim version a tag for
	// If-Match.
	claimPuts, claimGets int
	etags                map[string]string
	etag                 int
	// lostClaimPuts is how many of the next claim writes land but answer
	// 412, as the SDK's retry of a write whose response was lost does.
	lostClaimPuts int
	// stallClaims makes claim writes wait for their context to end.
	stallClaims bool
}

// isClaim reports whether a key is a job's claim rather than a document or
// a result.
func isClaim(key *string) bool { return strings.HasSuffix(aws.ToString(key), ".claim") }

// claimGet serves a claim with its ETag.
func (s *fakeStore) claimGet(in *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claimGets++
	k := objKey(in.Bucket, in.Key)
	b, ok := s.objects[k]
	if !ok {
		return nil, sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "The specified key does not exist."})
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ContentLength: aws.Int64(int64(len(b))), ETag: aws.String(s.etags[k])}, nil
}

// claimPut stores a claim under S3's conditional-write rules.
func (s *fakeStore) claimPut(ctx context.Context, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
	s.mu.Lock()
	stalled := s.stallClaims
	s.mu.Unlock()
	if stalled {
		return nil, stall(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claimPuts++
	etag, err := s.write(in)
	if err != nil {
		return nil, err
	}
	if s.lostClaimPuts > 0 {
		s.lostClaimPuts--
		return nil, errPrecondition
	}
	return &s3.PutObjectOutput{ETag: aws.String(etag)}, nil
}

func newFakeStore() *fakeStore {
	return &fakeStore{objects: map[string][]byte{}, length: map[string]*int64{}}
}

func objKey(bucket, key *string) string { return aws.ToString(bucket) + "/" + aws.ToString(key) }

// stallTimeout is how long a stalled fake waits for its context before it
// gives up with errStallNotCancelled: long enough for any test, short enough
// that code which forgets a timeout fails instead of hanging the suite.
const stallTimeout = 5 * time.Second

// errStallNotCancelled is what a stalled fake returns when its context never
// ended. It reads as a permanent error, so a test relying on a timeout fails.
var errStallNotCancelled = sdkErr(400, &smithy.GenericAPIError{Code: "StallNotCancelled", Message: "the call's context was never cancelled"})

// stall waits for ctx to end, as a call to an endpoint that never answers.
func stall(ctx context.Context) error {
	t := time.NewTimer(stallTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("request send: %w", ctx.Err())
	case <-t.C:
		return errStallNotCancelled
	}
}

func (s *fakeStore) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if isClaim(in.Key) {
		return s.claimGet(in)
	}
	s.mu.Lock()
	s.gets++
	stalled := s.stallGet
	s.mu.Unlock()
	if stalled {
		return nil, stall(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	k := objKey(in.Bucket, in.Key)
	b, ok := s.objects[k]
	if !ok {
		return nil, sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "The specified key does not exist."})
	}
	n := aws.Int64(int64(len(b)))
	if l, ok := s.length[k]; ok {
		n = l
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ContentLength: n, ETag: aws.String(s.etags[k])}, nil
}

func (s *fakeStore) HeadObject(ctx context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	s.mu.Lock()
	s.heads++
	stalled := s.stallHead
	s.mu.Unlock()
	if stalled {
		return nil, stall(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headErr != nil {
		return nil, s.headErr
	}
	if _, ok := s.objects[objKey(in.Bucket, in.Key)]; !ok {
		// HEAD responses have no body, so S3 errors carry only a status.
		return nil, sdkErr(404, &smithy.GenericAPIError{Code: "NotFound"})
	}
	return &s3.HeadObjectOutput{}, nil
}

func (s *fakeStore) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if isClaim(in.Key) {
		return s.claimPut(ctx, in)
	}
	s.mu.Lock()
	s.puts++
	stalled := s.stallPut
	s.mu.Unlock()
	if stalled {
		return nil, stall(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.putErrs) > 0 {
		err := s.putErrs[0]
		s.putErrs = s.putErrs[1:]
		return nil, err
	}
	if s.putErr != nil {
		return nil, s.putErr
	}
	etag, err := s.write(in)
	if err != nil {
		return nil, err
	}
	if s.lostPuts > 0 {
		s.lostPuts--
		return nil, fmt.Errorf("read response: %w", io.ErrUnexpectedEOF)
	}
	return &s3.PutObjectOutput{ETag: aws.String(etag)}, nil
}

// errPrecondition is S3's 412 to a conditional write that does not hold.
var errPrecondition = sdkErr(412, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"})

// write stores a PutObject under S3's conditional-write rules and returns
// the new ETag; s.mu is held.
func (s *fakeStore) write(in *s3.PutObjectInput) (string, error) {
	k := objKey(in.Bucket, in.Key)
	if err := s.condition(k, in); err != nil {
		return "", err
	}
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return "", err
	}
	s.store(k, b)
	return s.etags[k], nil
}

// condition applies S3's conditional-write rules to a PutObject; s.mu is
// held.
func (s *fakeStore) condition(k string, in *s3.PutObjectInput) error {
	cur, exists := s.etags[k]
	if _, ok := s.objects[k]; ok {
		exists = true
	}
	switch {
	case aws.ToString(in.IfNoneMatch) == "*" && exists:
		return errPrecondition
	case in.IfMatch != nil && !exists:
		return sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "The specified key does not exist."})
	case in.IfMatch != nil && aws.ToString(in.IfMatch) != cur:
		return errPrecondition
	}
	return nil
}

// store keeps an object and gives it a new ETag; s.mu is held.
func (s *fakeStore) store(k string, b []byte) {
	if s.etags == nil {
		s.etags = map[string]string{}
	}
	s.etag++
	s.objects[k] = b
	s.etags[k] = fmt.Sprintf(`"%d"`, s.etag)
}

func (s *fakeStore) object(bucket, key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[bucket+"/"+key]
}

// reply is one scripted Converse answer: an output or an error, or a call
// that stalls until its context ends.
type reply struct {
	out   *bedrockruntime.ConverseOutput
	err   error
	stall bool
}

// fakeConverser answers Converse calls from a script, one reply per call,
// and records what it was asked.
type fakeConverser struct {
	mu      sync.Mutex
	replies []reply
	calls   []*bedrockruntime.ConverseInput
	// attempts records RetryMaxAttempts after the call's options applied.
	attempts []int
	// deadlines records whether each call's context had a deadline.
	deadlines []bool
	// stalling, if set, is closed when a stalled call starts waiting.
	stalling chan struct{}
}

func (f *fakeConverser) Converse(ctx context.Context, in *bedrockruntime.ConverseInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	r, err := f.next(ctx, in, optFns)
	if err != nil {
		return nil, err
	}
	if r.stall {
		f.mu.Lock()
		if f.stalling != nil {
			close(f.stalling)
			f.stalling = nil
		}
		f.mu.Unlock()
		return nil, stall(ctx)
	}
	return r.out, r.err
}

func (f *fakeConverser) next(ctx context.Context, in *bedrockruntime.ConverseInput, optFns []func(*bedrockruntime.Options)) (reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, hasDeadline := ctx.Deadline()
	f.deadlines = append(f.deadlines, hasDeadline)
	o := bedrockruntime.Options{RetryMaxAttempts: 3}
	for _, fn := range optFns {
		fn(&o)
	}
	f.attempts = append(f.attempts, o.RetryMaxAttempts)
	f.calls = append(f.calls, in)
	if len(f.replies) == 0 {
		return reply{}, errors.New("fakeConverser: no reply scripted")
	}
	r := f.replies[0]
	f.replies = f.replies[1:]
	return r, nil
}

// answer builds a Converse output.
func answer(text string, stop types.StopReason, in, out int32, trace *types.ConverseTrace) *bedrockruntime.ConverseOutput {
	return &bedrockruntime.ConverseOutput{
		Output: &types.ConverseOutputMemberMessage{Value: types.Message{
			Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: text}},
		}},
		StopReason: stop,
		Usage:      &types.TokenUsage{InputTokens: aws.Int32(in), OutputTokens: aws.Int32(out), TotalTokens: aws.Int32(in + out)},
		Trace:      trace,
	}
}

// unitsTrace is a guardrail trace that reports only text units.
func unitsTrace(content, topics, sensitive int32) *types.ConverseTrace {
	return &types.ConverseTrace{Guardrail: &types.GuardrailTraceAssessment{
		InputAssessment: map[string]types.GuardrailAssessment{"tierq-default": {InvocationMetrics: &types.GuardrailInvocationMetrics{
			Usage: &types.GuardrailUsage{ContentPolicyUnits: aws.Int32(content), TopicPolicyUnits: aws.Int32(topics),
				SensitiveInformationPolicyUnits: aws.Int32(sensitive), WordPolicyUnits: aws.Int32(0)},
		}}},
	}}
}

var fakeStart = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// tickClock advances 10 ms per reading.
type tickClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(10 * time.Millisecond)
	return c.now
}

// unit is a pipeline on fakes.
type unit struct {
	p       *Pipeline
	store   *fakeStore
	conv    *fakeConverser
	metrics *bytes.Buffer
	logs    *bytes.Buffer
}

func newUnit(t *testing.T, replies []reply, change func(*Config)) *unit {
	t.Helper()
	u := &unit{store: newFakeStore(), conv: &fakeConverser{replies: replies}, metrics: &bytes.Buffer{}, logs: &bytes.Buffer{}}
	cfg := Config{ResultsBucket: "results", InputBuckets: []string{"docs"}, WorkerID: "w1", Version: "v1", Tiers: tiering.Default()}
	if change != nil {
		change(&cfg)
	}
	p, err := New(cfg, Deps{
		Converser: u.conv, Store: u.store, Metrics: u.metrics,
		Logger:       slog.New(slog.NewJSONHandler(u.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          (&tickClock{now: fakeStart}).Now,
		Backoff:      testenv.NoWait,
		WriteBackoff: testenv.NoWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	u.p = p
	return u
}

// The unit tests' fake store must behave like S3 wherever results and
// claims depend on it: the same suite runs against kumo, and against any
// endpoint AWS_ENDPOINT_URL_S3 names (store_conformance_test.go).
func TestFakeStoreBehavesLikeS3(t *testing.T) {
	t.Parallel()
	testenv.RunObjectStoreSuite(t, testenv.StoreBackend{Name: "fake", Store: newFakeStore(), Bucket: "suite"})
}
