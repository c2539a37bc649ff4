package submit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/submit"
)

// fakeQueue records SendMessageBatch calls. refuse, when set, decides per
// call and entry whether SQS reports the entry as failed.
type fakeQueue struct {
	mu     sync.Mutex
	calls  []*sqs.SendMessageBatchInput
	refuse func(call int, e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry
	err    error // returned by every call when set
}

func (q *fakeQueue) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	call := len(q.calls)
	q.calls = append(q.calls, in)
	if q.err != nil {
		return nil, q.err
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if q.refuse != nil {
			if f := q.refuse(call, e); f != nil {
				f.Id = e.Id
				out.Failed = append(out.Failed, *f)
				continue
			}
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out, nil
}

// accepted returns the bodies of entries SQS accepted, keyed by job ID
// attribute, in order.
func (q *fakeQueue) bodies(t *testing.T) []string {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for call, in := range q.calls {
		for _, e := range in.Entries {
			if q.refuse != nil && q.refuse(call, e) != nil {
				continue
			}
			out = append(out, aws.ToString(e.MessageBody))
		}
	}
	return out
}

// fakeUploader keeps uploaded objects in memory.
type fakeUploader struct {
	mu      sync.Mutex
	objects map[string][]byte
	ctype   map[string]string
}

func (u *fakeUploader) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	body, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.objects == nil {
		u.objects, u.ctype = map[string][]byte{}, map[string]string{}
	}
	key := aws.ToString(in.Bucket) + "/" + aws.ToString(in.Key)
	u.objects[key] = body
	u.ctype[key] = aws.ToString(in.ContentType)
	return &s3.PutObjectOutput{}, nil
}

// job is a valid job message as a JSON-encodable map.
func job(id, text string) map[string]any {
	return map[string]any{"version": "1", "job_id": id, "task": "summarize", "text": text}
}

// writeJSONL writes lines (strings verbatim, anything else JSON-encoded) to
// dir/name and returns its path.
func writeJSONL(t *testing.T, dir, name string, lines ...any) string {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		if s, ok := l.(string); ok {
			b.WriteString(s)
		} else {
			data, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
		}
		b.WriteByte('\n')
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// jobs returns n valid jobs j00, j01, ...
func jobs(n int, text string) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = job("j"+pad2(i), text)
	}
	return out
}

func pad2(i int) string {
	if i < 10 {
		return "0" + strconv.Itoa(i)
	}
	return strconv.Itoa(i)
}

func sendOpts(paths ...string) submit.Options {
	return submit.Options{Paths: paths, QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"}
}
