package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sivchari/kumo"
)

func TestSubmitHelpDocumentsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"submit", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	help := errOut.String()
	for _, flag := range []string{"queue-url", "input-bucket", "input-prefix", "inline-limit", "task", "labels", "fields",
		"instructions", "tier-hint", "tier-override", "job-id-prefix", "tenant", "tiers", "raw", "dry-run", "verbose",
		"allow-invalid", "s3-path-style"} {
		if !strings.Contains(help, "-"+flag+" ") && !strings.Contains(help, "-"+flag+"\n") {
			t.Errorf("help does not document --%s:\n%s", flag, help)
		}
	}
	for _, env := range []string{"TIERQ_QUEUE_URL", "TIERQ_INPUT_BUCKET", "TIERQ_TIERS_FILE", "TIERQ_S3_PATH_STYLE"} {
		if !strings.Contains(help, env) {
			t.Errorf("help does not mention %s", env)
		}
	}
	if !strings.Contains(run2usage(t), "submit") {
		t.Error("top-level usage does not list submit")
	}
}

func run2usage(t *testing.T) string {
	t.Helper()
	var out bytes.Buffer
	run(context.Background(), []string{"--help"}, &out, &out)
	return out.String()
}

func TestSubmitDryRunPrintsTierTable(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"submit", "--dry-run", "../../testdata/corpus/jobs.jsonl"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	for _, row := range []string{"TIER", "economy", "standard", "premium", "TOTAL"} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, row+" ") }) {
			t.Errorf("no %s row in the plan:\n%s", row, out.String())
		}
	}
	data, err := os.ReadFile("../../testdata/corpus/jobs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	jobs := strings.Count(strings.TrimSpace(string(data)), "\n") + 1 // one job per line
	if want := fmt.Sprintf("dry run: planned %d,", jobs); !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr lacks the summary line:\n%s", errOut.String())
	}
}

func TestSubmitRejectsBadUsageBeforeAWS(t *testing.T) {
	t.Setenv("TIERQ_QUEUE_URL", "")
	cases := map[string]struct {
		args []string
		want string
	}{
		"no queue":         {[]string{"submit", "x.txt"}, "queue URL"},
		"no paths":         {[]string{"submit", "--queue-url", "q"}, "paths"},
		"bad inline limit": {[]string{"submit", "--inline-limit", "lots", "x"}, "byte count"},
		"classify labels":  {[]string{"submit", "--queue-url", "q", "--task", "classify", "--labels", "only", "x"}, "labels"},
		"bad tiers file":   {[]string{"submit", "--dry-run", "--tiers", "/nonexistent/tiers.yaml", "x"}, "tiers file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), c.args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.want) {
				t.Errorf("exit %d, stderr %q; want non-zero and %q", code, errOut.String(), c.want)
			}
		})
	}
}

// TestSubmitSendsWithFlagsAndEnv runs the command end to end against kumo
// through the AWS SDK's own environment settings, as in a container.
func TestSubmitSendsWithFlagsAndEnv(t *testing.T) {
	srv := kumo.NewServer()
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": srv.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
		// A wrong queue in the environment: the flag must win.
		"TIERQ_QUEUE_URL": "http://localhost:4566/000000000000/wrong",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	client := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("tierq-cmd-submit-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Ticket 7.txt"), []byte("My invoice is wrong."), 0o644); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	code := run(ctx, []string{"submit", "--queue-url", aws.ToString(q.QueueUrl), "--task", "classify", "--labels", "billing, outage",
		"--job-id-prefix", "cmd-", "--tenant", "acme", dir}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "submit: sent 1, uploaded 0, skipped 0, failed 0") {
		t.Errorf("stderr lacks the summary line:\n%s", errOut.String())
	}
	got, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("received %v (%v), want 1 message", got, err)
	}
	var j struct {
		JobID    string            `json:"job_id"`
		Task     string            `json:"task"`
		Labels   []string          `json:"labels"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(got.Messages[0].Body)), &j); err != nil {
		t.Fatal(err)
	}
	if j.JobID != "cmd-Ticket-7.txt" || j.Task != "classify" || !slices.Equal(j.Labels, []string{"billing", "outage"}) || j.Metadata["tenant"] != "acme" {
		t.Errorf("job %+v; want cmd-Ticket-7.txt, classify, [billing outage], tenant acme", j)
	}
}
