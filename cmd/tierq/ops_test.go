package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

func TestOpsHelpDocumentsEveryFlag(t *testing.T) {
	tests := map[string]struct{ flags, env []string }{
		"status": {[]string{"queue-url", "dlq-url", "results-bucket", "results-prefix", "s3-path-style", "cloudwatch", "dlq-scan", "concurrency", "json"},
			[]string{"TIERQ_QUEUE_URL", "TIERQ_DLQ_URL", "TIERQ_RESULTS_BUCKET", "TIERQ_RESULTS_PREFIX", "TIERQ_S3_PATH_STYLE"}},
		"redrive": {[]string{"queue-url", "dlq-url", "reason", "max", "dry-run", "batch"}, []string{"TIERQ_QUEUE_URL", "TIERQ_DLQ_URL"}},
		"result":  {[]string{"results-bucket", "results-prefix", "s3-path-style", "full", "json"}, []string{"TIERQ_RESULTS_BUCKET", "TIERQ_RESULTS_PREFIX", "TIERQ_S3_PATH_STYLE"}},
	}
	usage := run2usage(t)
	for cmd, tt := range tests {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{cmd, "--help"}, &out, &errOut); code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		help := errOut.String()
		for _, f := range tt.flags {
			if !strings.Contains(help, "-"+f+" ") && !strings.Contains(help, "-"+f+"\n") {
				t.Errorf("%s help does not document --%s", cmd, f)
			}
		}
		for _, e := range tt.env {
			if strings.Count(help, e) < 2 { // in the flag's line and under Environment
				t.Errorf("%s help does not name %s with its flag and under Environment", cmd, e)
			}
		}
		if !strings.Contains(help, "What it costs") {
			t.Errorf("%s help does not say what it costs", cmd)
		}
		if !strings.Contains(usage, "\n  "+cmd+" ") {
			t.Errorf("top-level usage does not list %s:\n%s", cmd, usage)
		}
	}
}

// TestOpsUsageErrorsNameFlagAndEnv: every mistake at once, each naming
// the flag and its variable, before any AWS client is built (no Region is
// set, so reaching AWS would fail differently).
func TestOpsUsageErrorsNameFlagAndEnv(t *testing.T) {
	for _, k := range []string{"TIERQ_QUEUE_URL", "TIERQ_DLQ_URL", "TIERQ_RESULTS_BUCKET", "TIERQ_RESULTS_PREFIX", "TIERQ_S3_PATH_STYLE", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"--queue-url / TIERQ_QUEUE_URL is required", "--dlq-url / TIERQ_DLQ_URL is required", "--results-bucket / TIERQ_RESULTS_BUCKET is required"}},
		{[]string{"status", "--queue-url", "q", "--dlq-url", "d", "--results-bucket", "b", "--dlq-scan", "-1", "--concurrency", "0"}, []string{"--dlq-scan -1: want 0 or more", "--concurrency 0: want 1 to 256"}},
		{[]string{"redrive", "--max", "-2", "--batch", "11"}, []string{"--queue-url / TIERQ_QUEUE_URL is required", "--dlq-url / TIERQ_DLQ_URL is required", "--max -2", "--batch 11: want 1 to 10"}},
		{[]string{"redrive", "--queue-url", "q", "--dlq-url", "q"}, []string{"--queue-url and --dlq-url are the same queue"}},
		{[]string{"result"}, []string{"give the JOB_ID", "--results-bucket / TIERQ_RESULTS_BUCKET is required"}},
		{[]string{"result", "--results-bucket", "b", "../etc/passwd"}, []string{`invalid job_id: "../etc/passwd"`}},
		{[]string{"result", "--results-bucket", "b", "a", "b"}, []string{"give one JOB_ID, got 2"}},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), tt.args, &out, &errOut); code != 1 {
			t.Errorf("%q: exit %d, want 1; stderr:\n%s", tt.args, code, errOut.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(errOut.String(), w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tt.args, w, errOut.String())
			}
		}
		if strings.Contains(errOut.String(), "Region") {
			t.Errorf("%q: reached AWS before reporting usage:\n%s", tt.args, errOut.String())
		}
	}
}

// TestOpsCommandsOnKumo runs status, redrive and result end to end
// through the SDK's own environment settings, as in a container.
func TestOpsCommandsOnKumo(t *testing.T) {
	srv := kumo.NewServer()
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": srv.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
		"TIERQ_S3_PATH_STYLE": "true", "TIERQ_RESULTS_PREFIX": "",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	sq := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds})
	s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds, UsePathStyle: true})
	suffix := fmt.Sprint(time.Now().UnixNano())
	mk := func(name string) string {
		out, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + suffix)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	q, dlq := mk("ops-jobs-"), mk("ops-dlq-")
	bucket := "ops-results-" + suffix
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	// The variables serve every command, as the worker's environment would.
	t.Setenv("TIERQ_QUEUE_URL", q)
	t.Setenv("TIERQ_DLQ_URL", dlq)
	t.Setenv("TIERQ_RESULTS_BUCKET", bucket)

	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for i, status := range []string{"succeeded", "succeeded", "failed"} {
		r := jobv1.Result{Version: "1", JobID: fmt.Sprint("ops-", i), Status: status, Tier: "economy",
			Cost: jobv1.Cost{TotalUSD: 0.25}, Timings: jobv1.Timings{FinishedAt: at.Add(time.Duration(i) * time.Minute)},
			Output: &jobv1.Output{Text: strings.Repeat("x", 700)}}
		if status == "failed" {
			r.Error = &jobv1.ErrorInfo{Code: jobv1.CodeDocumentNotFound, Message: "s3://in/doc.txt does not exist"}
		}
		b, _ := json.Marshal(r)
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("results/" + r.JobID + ".json"), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	stuck := `{"version":"1","job_id":"ops-stuck","task":"summarize","text":"x"}`
	sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(stuck)})
	sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String("nope"),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{worker.AttrDeadLetterReason: {DataType: aws.String("String"),
			StringValue: aws.String("message 1 is not a job: message is not a JSON job object: invalid character 'n' at byte 0")}}})

	cmd := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, &out, &errOut)
		return out.String(), errOut.String(), code
	}
	out, errOut, code := cmd("status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut)
	}
	for _, w := range []string{"0 visible, 0 in flight, 0 delayed", "2 visible", "read 2 (all of them)", "not_json      1", "no_reason      1",
		"3 results", "succeeded     2", "failed by code: document_not_found 1", "total cost 0.750000 USD", "throughput: 1.5 jobs/min"} {
		if !strings.Contains(out, w) {
			t.Errorf("status output lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(errOut, "status: read 3 result objects in") {
		t.Errorf("status stderr lacks the progress line:\n%s", errOut)
	}
	// kumo counts a released message as in flight until its next receive.
	out, _, code = cmd("status", "--json", "--dlq-scan", "0")
	var st struct {
		Results struct {
			Results int `json:"results"`
		} `json:"results"`
		DeadLetters struct {
			Visible  int `json:"visible"`
			InFlight int `json:"in_flight"`
			Read     int `json:"read"`
		} `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Results.Results != 3 || st.DeadLetters.Visible+st.DeadLetters.InFlight != 2 || st.DeadLetters.Read != 0 {
		t.Errorf("status --json: exit %d, %v, %+v:\n%s", code, err, st, out)
	}

	out, _, code = cmd("redrive", "--dry-run")
	if code != 0 || !strings.Contains(out, "would move 2 dead letters") || !strings.Contains(out, "job ops-stuck  no_reason") {
		t.Errorf("redrive --dry-run: exit %d:\n%s", code, out)
	}
	out, errOut, code = cmd("redrive", "--reason", "no_reason")
	if code != 0 || !strings.Contains(out, "moved 1, skipped 1, failed 0") || !strings.Contains(errOut, "redrive: moved 1") {
		t.Errorf("redrive: exit %d:\n%s\n%s", code, out, errOut)
	}
	got, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 1})
	if err != nil || len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != stuck {
		t.Errorf("job queue after redrive: %+v, %v; want the stuck job byte for byte", got, err)
	}

	out, _, code = cmd("result", "ops-2")
	for _, w := range []string{"status       failed", "error        document_not_found: s3://in/doc.txt does not exist", "[… 100 more characters; --full prints all of it"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("result: exit %d, output lacks %q:\n%s", code, w, out)
		}
	}
	out, _, code = cmd("result", "ops-0", "--full")
	if code != 0 || !strings.Contains(out, strings.Repeat("x", 700)) || strings.Contains(out, "more characters") {
		t.Errorf("result --full: exit %d:\n%s", code, out)
	}
	out, _, code = cmd("result", "--json", "ops-1")
	var raw jobv1.Result
	if err := json.Unmarshal([]byte(out), &raw); code != 0 || err != nil || raw.JobID != "ops-1" {
		t.Errorf("result --json: exit %d, %v:\n%s", code, err, out)
	}
	_, errOut, code = cmd("result", "ops-missing")
	if code != 1 || !strings.Contains(errOut, "no result for job ops-missing") || !strings.Contains(errOut, "tierq status") {
		t.Errorf("missing result: exit %d:\n%s", code, errOut)
	}
}
