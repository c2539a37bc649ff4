package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/devstack"
	"github.com/tierq/tierq/internal/emulator"
)

// The tests of this package run one after another: kumo keeps one store
// per process, which every Stack shares.

func start(t *testing.T, cfg devstack.Config) *devstack.Stack {
	t.Helper()
	cfg.Sim = bedrocksim.DefaultConfig()
	st, err := devstack.Start(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return st
}

// TestUpServesTheResourcesOnItsPorts talks to the public ports, through the
// real SDK clients, as tierq worker and submit do.
func TestUpServesTheResourcesOnItsPorts(t *testing.T) {
	st := start(t, devstack.Config{MaxReceiveCount: 7})
	ctx := t.Context()
	ep := st.Endpoints
	if !strings.HasPrefix(ep.SQS, "http://127.0.0.1:") || ep.SQS != ep.S3 || ep.Bedrock == ep.SQS {
		t.Fatalf("endpoints %+v: want SQS and S3 on one loopback port, the simulator on another", ep)
	}
	q, s := emulator.SQS(ep.SQS), emulator.S3(ep.S3)
	if want := ep.SQS + "/000000000000/" + devstack.JobQueue; ep.Queues.URL != want {
		t.Errorf("queue URL %s, want %s (on the public endpoint)", ep.Queues.URL, want)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(ep.Queues.URL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatalf("job queue through the public port: %v", err)
	}
	var redrive struct {
		Target string      `json:"deadLetterTargetArn"`
		Max    json.Number `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &redrive); err != nil {
		t.Fatalf("redrive policy %q: %v", attrs.Attributes["RedrivePolicy"], err)
	}
	if !strings.HasSuffix(redrive.Target, ":"+devstack.DeadLetterQueue) || redrive.Max != "7" {
		t.Errorf("redrive policy %+v: want %s after 7 receives", redrive, devstack.DeadLetterQueue)
	}
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(ep.Queues.URL), MessageBody: aws.String("{}")}); err != nil {
		t.Fatalf("send: %v", err)
	}
	got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(ep.Queues.URL), WaitTimeSeconds: 1})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages; want the one sent", err, len(got.Messages))
	}
	q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(ep.Queues.URL), ReceiptHandle: got.Messages[0].ReceiptHandle})
	for _, b := range []string{devstack.ResultsBucket, devstack.InputBucket} {
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("probe"), Body: strings.NewReader("x")}); err != nil {
			t.Errorf("put into %s: %v", b, err)
		}
		s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("probe")})
	}
	resp, err := http.Get(ep.Bedrock + "/_sim/stats")
	if err != nil {
		t.Fatalf("simulator stats: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("simulator stats: %s", resp.Status)
	}
}

func TestStartTwiceKeepsTheResourcesAndTakesTheNewSettings(t *testing.T) {
	first := start(t, devstack.Config{MaxReceiveCount: 3})
	ctx := t.Context()
	if _, err := first.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(devstack.ResultsBucket), Key: aws.String("kept"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	// kumo's store is per process, so a second stack finds the first's
	// queues and buckets, as `up --state` finds its restored ones.
	second := start(t, devstack.Config{MaxReceiveCount: 9})
	attrs, err := second.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(second.Endpoints.Queues.URL),
		AttributeNames: []sqstypes.QueueAttributeName{"RedrivePolicy"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(attrs.Attributes["RedrivePolicy"], `"maxReceiveCount":"9"`) {
		t.Errorf("redrive policy after the second start %s: want maxReceiveCount 9", attrs.Attributes["RedrivePolicy"])
	}
	if _, err := second.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(devstack.ResultsBucket), Key: aws.String("kept")}); err != nil {
		t.Errorf("object of the first start: %v", err)
	}
	second.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(devstack.ResultsBucket), Key: aws.String("kept")})
}

// TestStateRoundTrip saves queues, messages and objects, wipes them, and
// restores them.
func TestStateRoundTrip(t *testing.T) {
	st := start(t, devstack.Config{})
	ctx := t.Context()
	qs, err := devstack.CreateQueues(ctx, st.SQS, "state-jobs", 4, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := devstack.CreateBuckets(ctx, st.S3, "state-bucket"); err != nil {
		t.Fatal(err)
	}
	bodies := []string{}
	for i := range 23 { // more than two receive batches
		b := `{"n":` + string(rune('a'+i)) + `}`
		bodies = append(bodies, b)
		if _, err := st.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(qs.URL), MessageBody: aws.String(b),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("job")}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A message a worker released (visibility 0) is in flight in kumo until
	// the next receive; it must be kept too.
	got, err := st.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qs.URL), MaxNumberOfMessages: 1})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("receive: %v", err)
	}
	if _, err := st.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(qs.URL),
		ReceiptHandle: got.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	objects := map[string]string{"results/a.json": `{"a":1}`, "deep/key with spaces/ü.txt": "text"}
	for k, v := range objects {
		if _, err := st.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("state-bucket"), Key: aws.String(k),
			Body: strings.NewReader(v), ContentType: aws.String("application/json"), Metadata: map[string]string{"job": "a"}}); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	n, err := devstack.SaveState(ctx, st.SQS, st.S3, dir)
	if err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	if n.Objects < len(objects) || n.Messages < len(bodies) {
		t.Errorf("SaveState counted %+v, want at least %d messages and %d objects", n, len(bodies), len(objects))
	}
	// Wipe what this test made (other tests' resources stay: kumo's store
	// is shared by the process).
	for _, u := range []string{qs.URL, qs.DLQURL} {
		if _, err := st.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)}); err != nil {
			t.Fatal(err)
		}
	}
	for k := range objects {
		st.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("state-bucket"), Key: aws.String(k)})
	}
	if _, err := st.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("state-bucket")}); err != nil {
		t.Fatal(err)
	}

	if _, err := devstack.RestoreState(ctx, st.SQS, st.S3, dir); err != nil {
		t.Fatalf("RestoreState: %v", err)
	}
	url, err := st.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("state-jobs")})
	if err != nil {
		t.Fatalf("restored queue: %v", err)
	}
	attrs, err := st.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["VisibilityTimeout"] != "30" || !strings.Contains(attrs.Attributes["RedrivePolicy"], "state-jobs-dlq") {
		t.Errorf("restored attributes %v: want visibility 30 and the redrive policy", attrs.Attributes)
	}
	var restored []string
	err = emulator.ReadAll(ctx, st.SQS, aws.ToString(url.QueueUrl), 10*time.Second, func(m sqstypes.Message) {
		restored = append(restored, aws.ToString(m.Body))
		if v := m.MessageAttributes["kind"]; aws.ToString(v.StringValue) != "job" {
			t.Errorf("restored message %s lost its attribute: %+v", aws.ToString(m.Body), m.MessageAttributes)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(restored)
	slices.Sort(bodies)
	if !slices.Equal(restored, bodies) {
		t.Errorf("restored messages %q, want %q", restored, bodies)
	}
	for k, v := range objects {
		out, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("state-bucket"), Key: aws.String(k)})
		if err != nil {
			t.Errorf("restored object %s: %v", k, err)
			continue
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(b) != v || aws.ToString(out.ContentType) != "application/json" || out.Metadata["job"] != "a" {
			t.Errorf("restored %s = %q (%s, %v), want %q (application/json, job=a)", k, b, aws.ToString(out.ContentType), out.Metadata, v)
		}
	}
	// A second save replaces the snapshot whole: no .tmp or .old left.
	if _, err := devstack.SaveState(ctx, st.SQS, st.S3, dir); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "snapshot" {
		t.Errorf("state directory holds %v, want only snapshot/", entries)
	}
}

func TestRestoreStateOfAnEmptyDirectoryRestoresNothing(t *testing.T) {
	st := start(t, devstack.Config{})
	n, err := devstack.RestoreState(t.Context(), st.SQS, st.S3, filepath.Join(t.TempDir(), "never-saved"))
	if err != nil || n != (devstack.Counts{}) {
		t.Errorf("RestoreState of nothing = %+v, %v; want zero counts, no error", n, err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  devstack.Config
		want []string // substrings of the error; none: valid
	}{
		{"defaults", devstack.Config{AWSPort: 4566, SimPort: 4599}, nil},
		{"free ports", devstack.Config{}, nil},
		{"same port", devstack.Config{AWSPort: 4566, SimPort: 4566}, []string{"both 4566"}},
		{"every mistake at once", devstack.Config{AWSPort: 70000, SimPort: -1, MaxReceiveCount: 1001, QueueVisibility: 1500 * time.Millisecond, Host: "http://x"},
			[]string{"AWS port 70000", "simulator port -1", "max receive count 1001", "visibility timeout 1.5s", `host "http://x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ApplyDefaults()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors about %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestApplyDefaultsHost(t *testing.T) {
	for bind, want := range map[string]string{"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "192.168.1.5": "192.168.1.5"} {
		c := devstack.Config{Bind: bind}
		c.ApplyDefaults()
		if c.Host != want {
			t.Errorf("bind %q: host %q, want %q", bind, c.Host, want)
		}
	}
	c := devstack.Config{Bind: "0.0.0.0", Host: "tierq-dev"}
	c.ApplyDefaults()
	if c.Host != "tierq-dev" {
		t.Errorf("an explicit host became %q", c.Host)
	}
}

func ExampleWriteExports() {
	ep := devstack.Endpoints{SQS: "http://127.0.0.1:4566", S3: "http://127.0.0.1:4566", Bedrock: "http://127.0.0.1:4599",
		Queues: devstack.Queues{URL: "http://127.0.0.1:4566/000000000000/tierq-jobs", DLQURL: "http://127.0.0.1:4566/000000000000/tierq-jobs-dlq"}}
	devstack.WriteExports(os.Stdout, ep.Env())
	// Output:
	// export AWS_REGION=us-east-1
	// export AWS_ACCESS_KEY_ID=test
	// export AWS_SECRET_ACCESS_KEY=test
	// export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:4566
	// export AWS_ENDPOINT_URL_S3=http://127.0.0.1:4566
	// export AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://127.0.0.1:4599
	// export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
	// export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
	// export TIERQ_S3_PATH_STYLE=true
	// export TIERQ_QUEUE_URL=http://127.0.0.1:4566/000000000000/tierq-jobs
	// export TIERQ_DLQ_URL=http://127.0.0.1:4566/000000000000/tierq-jobs-dlq
	// export TIERQ_RESULTS_BUCKET=tierq-results
	// export TIERQ_INPUT_BUCKETS=tierq-inputs
	// export TIERQ_INPUT_BUCKET=tierq-inputs
}

func TestWriteExportsQuotesForTheShell(t *testing.T) {
	var b bytes.Buffer
	devstack.WriteExports(&b, []devstack.Var{{"A", "plain-1.2:3/x"}, {"B", "has space"}, {"C", "it's"}, {"D", ""}})
	want := "export A=plain-1.2:3/x\nexport B='has space'\nexport C='it'\\''s'\nexport D=''\n"
	if b.String() != want {
		t.Errorf("WriteExports:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestStartWithABadSnapshotFailsAndKeepsIt: a snapshot that cannot be
// restored stops the start, and is not replaced by what little was
// restored.
func TestStartWithABadSnapshotFailsAndKeepsIt(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "snapshot", "queues.json")
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := devstack.Start(t.Context(), devstack.Config{StateDir: dir, Sim: bedrocksim.DefaultConfig()},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		st.Close(context.Background())
		t.Fatal("Start with a corrupt snapshot succeeded")
	}
	if !strings.Contains(err.Error(), "queues.json") {
		t.Errorf("Start error %q: want it to name the file", err)
	}
	if b, _ := os.ReadFile(bad); string(b) != "{not json" {
		t.Errorf("the snapshot was replaced: %q", b)
	}
}
