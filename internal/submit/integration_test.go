package submit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/submit"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
)

const corpus = "../../testdata/corpus"

// kumoEnv is kumo serving SQS and S3, with real SDK clients on it.
type kumoEnv struct {
	sqs *sqs.Client
	s3  *s3.Client
}

// kumoURL is the one kumo server of this test binary, started by TestMain.
// One is enough (kumo instances share their storage anyway), and starting
// several concurrently races inside kumo.
var kumoURL string

func TestMain(m *testing.M) { os.Exit(emulator.RunTests(m, &kumoURL)) }

func newEmulator(t *testing.T) kumoEnv {
	t.Helper()
	return kumoEnv{sqs: emulator.SQS(kumoURL), s3: emulator.S3(kumoURL)}
}

func (e kumoEnv) queue(t *testing.T) string {
	t.Helper()
	out, err := e.sqs.CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName: aws.String(emulator.Name(t, "tq")),
		// Long enough that nothing received comes back during the test, so
		// a second copy of a message can only be a second send.
		Attributes: map[string]string{"VisibilityTimeout": "600"},
	})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return aws.ToString(out.QueueUrl)
}

func (e kumoEnv) bucket(t *testing.T) string {
	t.Helper()
	name := emulator.Name(t, "tq")
	if _, err := e.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return name
}

// drain receives until want messages arrived, then once more to catch
// duplicates. Each receive waits at most 1 s (kumo's long-poll caveat).
func (e kumoEnv) drain(t *testing.T, queueURL string, want int) []types.Message {
	t.Helper()
	ctx := context.Background()
	var got []types.Message
	deadline := time.Now().Add(30 * time.Second)
	for extra := 0; extra < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages in 30 s, want %d", len(got), want)
		}
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		got = append(got, out.Messages...)
		if len(got) >= want && len(out.Messages) == 0 {
			extra++
		}
	}
	return got
}

// corpusJobIDs reads the job IDs of a corpus JSONL file, in order.
func corpusJobIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var j struct {
			JobID string `json:"job_id"`
		}
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ids = append(ids, j.JobID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestIntegrationCorpusArrivesExactlyOnce(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	queueURL, bucket := emu.queue(t), emu.bucket(t)
	jobsFile, docsFile := filepath.Join(corpus, "jobs.jsonl"), filepath.Join(corpus, "docs.jsonl")
	inline, byRef := corpusJobIDs(t, jobsFile), corpusJobIDs(t, docsFile)

	var progress bytes.Buffer
	sum, err := submit.Run(context.Background(), submit.Options{
		Paths:       []string{jobsFile, docsFile},
		QueueURL:    queueURL,
		InputBucket: bucket,
		InlineLimit: 64 << 10,
	}, submit.Deps{Queue: emu.sqs, Uploader: emu.s3}, &progress, nil)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	want := len(inline) + len(byRef)
	if sum.Sent != want || sum.Uploaded != len(byRef) {
		t.Errorf("sent %d uploaded %d, want %d and %d", sum.Sent, sum.Uploaded, want, len(byRef))
	}

	msgs := emu.drain(t, queueURL, want)
	seen := map[string]int{}
	for _, m := range msgs {
		j, err := jobv1.ParseJob([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Errorf("received body does not parse as a job: %v", err)
			continue
		}
		seen[j.JobID]++
		if attr := aws.ToString(m.MessageAttributes[submit.AttrJobID].StringValue); attr != j.JobID {
			t.Errorf("job %s: attribute %s = %q", j.JobID, submit.AttrJobID, attr)
		}
		switch {
		case slices.Contains(byRef, j.JobID):
			if j.Text != "" || j.DocumentURI == "" {
				t.Errorf("job %s: want by reference, got text %d bytes, uri %q", j.JobID, len(j.Text), j.DocumentURI)
				continue
			}
			checkObject(t, emu, j, bucket)
		case j.Text == "" || j.DocumentURI != "":
			t.Errorf("job %s: want inline text (its line fits 64 KiB), got uri %q", j.JobID, j.DocumentURI)
		}
	}
	for _, id := range slices.Concat(inline, byRef) {
		if seen[id] != 1 {
			t.Errorf("job %s arrived %d times, want exactly once", id, seen[id])
		}
	}
	if len(msgs) != want {
		t.Errorf("received %d messages, want %d", len(msgs), want)
	}
}

// checkObject compares a by-reference job's object with the file that
// docs.jsonl names for it.
func checkObject(t *testing.T, emu kumoEnv, j jobv1.Job, bucket string) {
	t.Helper()
	b, key, err := jobv1.ParseS3URI(j.DocumentURI)
	if err != nil || b != bucket || key != "inputs/"+j.JobID+".txt" {
		t.Errorf("job %s: document_uri %q, want s3://%s/inputs/%s.txt", j.JobID, j.DocumentURI, bucket, j.JobID)
		return
	}
	out, err := emu.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
	if err != nil {
		t.Errorf("job %s: get %s: %v", j.JobID, j.DocumentURI, err)
		return
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	var line struct{ File string }
	for _, l := range bytes.Split(mustRead(t, filepath.Join(corpus, "docs.jsonl")), []byte("\n")) {
		var probe struct {
			JobID string `json:"job_id"`
			File  string `json:"file"`
		}
		if json.Unmarshal(l, &probe) == nil && probe.JobID == j.JobID {
			line.File = probe.File
		}
	}
	want := mustRead(t, filepath.Join(corpus, line.File))
	if !bytes.Equal(got, want) {
		t.Errorf("job %s: object has %d bytes, want the %d bytes of %s", j.JobID, len(got), len(want), line.File)
	}
	if ct := aws.ToString(out.ContentType); ct != "text/plain; charset=utf-8" {
		t.Errorf("job %s: content type %q", j.JobID, ct)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestIntegrationRawSendsMalformedVerbatim(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	queueURL := emu.queue(t)
	dir := filepath.Join(corpus, "malformed")
	sum, err := submit.Run(context.Background(), submit.Options{Paths: []string{dir}, QueueURL: queueURL, Raw: true},
		submit.Deps{Queue: emu.sqs}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range entries {
		want = append(want, string(mustRead(t, filepath.Join(dir, e.Name()))))
	}
	if sum.Sent != len(want) {
		t.Errorf("sent %d, want %d", sum.Sent, len(want))
	}
	var got []string
	for _, m := range emu.drain(t, queueURL, len(want)) {
		got = append(got, aws.ToString(m.Body))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("received bodies %q, want the files verbatim %q", got, want)
	}
	for _, body := range got {
		if _, err := jobv1.ParseJob([]byte(body)); err == nil {
			t.Errorf("malformed body parses as a job: %s", body)
		}
	}
}

func TestIntegrationMissingQueueStops(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	missing := "http://localhost:4566/000000000000/" + emulator.Name(t, "tq")
	path := writeJSONL(t, t.TempDir(), "jobs.jsonl", jobs(12, "text")...)
	sum, err := submit.Run(context.Background(), submit.Options{Paths: []string{path}, QueueURL: missing},
		submit.Deps{Queue: emu.sqs, Backoff: testenv.NoWait}, nil, nil)
	if !errors.Is(err, submit.ErrQueueUnusable) {
		t.Errorf("Run error = %v, want ErrQueueUnusable", err)
	}
	if sum.Sent != 0 || len(sum.Failed)+sum.NotSent != 12 {
		t.Errorf("sent %d, failed %d, not sent %d; want 0 sent and all 12 reported", sum.Sent, len(sum.Failed), sum.NotSent)
	}
}
