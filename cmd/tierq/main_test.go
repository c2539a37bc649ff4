package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/logging"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/iampolicy"
	"github.com/tierq/tierq/internal/testenv"
)

func TestSimHelpDocumentsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"sim", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	for _, flag := range []string{"addr", "config", "minute", "latency-scale", "seed", "fault-internal",
		"fault-unavailable", "fault-timeout", "fault-not-ready", "spike-fraction", "spike", "print-config", "tls-cert", "tls-key"} {
		if !strings.Contains(errOut.String(), "-"+flag+" ") && !strings.Contains(errOut.String(), "-"+flag+"\n") {
			t.Errorf("help does not document --%s:\n%s", flag, errOut.String())
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"nope"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Errorf("exit %d, stderr %q; want 2 and a message", code, errOut.String())
	}
}

func TestSimServesAndStops(t *testing.T) {
	addr, stop := serveSim(t, "--minute", "6s")
	resp, err := http.Get("http://" + addr + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Minute string }
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Minute != "6s" {
		t.Errorf("stats minute = %q, want 6s from --minute", st.Minute)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d after cancel, want 0", code)
	}
}

func TestSimRejectsBadConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"sim", "--fault-timeout", "3"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "timeout") {
		t.Errorf("exit %d, stderr %q; want 1 and the bad setting named", code, errOut.String())
	}
}

func TestWorkerEnvListMatchesFlags(t *testing.T) {
	var s app.Settings
	fs, _, _, _ := workerFlags(&s, io.Discard)
	want := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { want[envName(f.Name)] = true })
	got := map[string]bool{}
	for _, e := range workerEnv {
		got[e] = true
	}
	for e := range want {
		if !got[e] {
			t.Errorf("workerEnv lacks %s", e)
		}
	}
	for e := range got {
		if !want[e] {
			t.Errorf("workerEnv lists %s, which no flag reads", e)
		}
	}
}

func TestWorkerSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/worker.yaml"
	if err := os.WriteFile(cfg, []byte("queue_url: file-q\nconcurrency: 3\ninput_buckets: [a, b]\nwait_time: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TIERQ_CONFIG": cfg, "TIERQ_CONCURRENCY": "5", "TIERQ_RESULTS_BUCKET": "env-bucket"}
	s, _, _, err := parseWorkerSettings([]string{"--concurrency", "7"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.QueueURL != "file-q" || s.Concurrency != 7 || s.ResultsBucket != "env-bucket" || s.WaitTime != 5*time.Second ||
		len(s.InputBuckets) != 2 || s.DrainTimeout != 25*time.Second {
		t.Errorf("settings = %+v: want queue from file, concurrency from flag (7), bucket from env, wait 5s from file, drain default", s)
	}

	if err := os.WriteFile(cfg, []byte("queue_ur1: typo\nconcurrency: many\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = parseWorkerSettings(nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "queue_ur1") || !strings.Contains(err.Error(), "concurrency") {
		t.Errorf("bad file: %v; want both the unknown key and the bad value reported", err)
	}
}

func TestWorkerReportsEveryMissingSetting(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"worker", "--concurrency", "0", "--wait-time", "30s"}, &out, &errOut)
	for _, want := range []string{"\n  --queue-url / TIERQ_QUEUE_URL: required\n", "\n  --dlq-url / TIERQ_DLQ_URL: required",
		"\n  --results-bucket / TIERQ_RESULTS_BUCKET: required\n",
		"\n  --wait-time / TIERQ_WAIT_TIME: must be whole seconds in 0..20s, got 30s\n", "tierq worker --help"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr does not mention %s:\n%s", want, errOut.String())
		}
	}
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

// TestReadmeDocumentsEveryWorkerSetting keeps README's configuration table
// complete and true: every flag, with its environment variable, and the
// default the flag really has (the component's Default constant).
func TestReadmeDocumentsEveryWorkerSetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var s app.Settings
	fs, _, _, _ := workerFlags(&s, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` / `" + envName(f.Name) + "` | "
		i := strings.Index(string(readme), row)
		if i < 0 {
			t.Errorf("README's worker configuration table has no row %s", row)
			return
		}
		rest := string(readme)[i+len(row):]
		documented := strings.Trim(strings.TrimSpace(rest[:strings.Index(rest, " |")]), "`")
		if !sameDefault(f.DefValue, documented) {
			t.Errorf("README says --%s defaults to %q; the flag's default is %q", f.Name, documented, f.DefValue)
		}
	})
}

// sameDefault compares a flag's default with README's wording of it: the
// same duration ("1m" and "1m0s"), the same size ("8 MiB" and 8388608), the
// same text, or for a flag without a default any words (required, none,
// host name).
func sameDefault(def, documented string) bool {
	if def == "" {
		return documented != ""
	}
	if d, err := time.ParseDuration(def); err == nil {
		r, err := time.ParseDuration(documented)
		return err == nil && r == d
	}
	if n, err := strconv.ParseInt(def, 10, 64); err == nil {
		if mib, ok := strings.CutSuffix(documented, " MiB"); ok {
			m, err := strconv.ParseInt(mib, 10, 64)
			return err == nil && m<<20 == n
		}
		m, err := strconv.ParseInt(documented, 10, 64)
		return err == nil && m == n
	}
	return def == documented
}

func TestIAMPolicyHelpDocumentsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"iam-policy", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	var cfg iampolicy.Config
	var tiersFile string
	iamPolicyFlags(&cfg, &tiersFile, io.Discard).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(errOut.String(), "-"+f.Name+" ") && !strings.Contains(errOut.String(), "-"+f.Name+"\n") {
			t.Errorf("help does not document --%s:\n%s", f.Name, errOut.String())
		}
	})
	var usage bytes.Buffer
	run(context.Background(), []string{"help"}, &usage, io.Discard)
	if !strings.Contains(usage.String(), "  iam-policy ") {
		t.Errorf("tierq help does not list iam-policy:\n%s", usage.String())
	}
}

// TestIAMPolicyPrintsTheShippedPolicy runs the command --help gives for
// deploy/iam-task-policy.json and expects that file, byte for byte.
func TestIAMPolicyPrintsTheShippedPolicy(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"iam-policy", "--queue-arn", "arn:aws:sqs:us-east-1:ACCOUNT_ID:tierq-jobs",
		"--results-bucket", "tierq-results-ACCOUNT_ID", "--input-buckets", "tierq-inputs-ACCOUNT_ID"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, errOut.String())
	}
	want, err := os.ReadFile("../../deploy/iam-task-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from deploy/iam-task-policy.json:\n%s", out.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("stderr: %s", errOut.String())
	}
}

func TestIAMPolicyReportsEveryMissingSetting(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"iam-policy", "--results-prefix", "/abs/"}, &out, &errOut)
	for _, want := range []string{"queue ARN: required", "results bucket: required", "must not start with /", "tierq iam-policy --help"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut.String())
		}
	}
	if code != 1 || out.Len() > 0 {
		t.Errorf("exit code %d and %d bytes of output; want 1 and no policy", code, out.Len())
	}
}

// settingFlags names a flag for every setting a user can set, and only
// flags that exist.
func TestSettingFlagsCoverSettings(t *testing.T) {
	var s app.Settings
	fs, _, _, _ := workerFlags(&s, io.Discard)
	fields := reflect.TypeFor[app.Settings]()
	for i := range fields.NumField() {
		name := fields.Field(i).Name
		if name == "Version" || name == "LimiterWindow" { // set by the build, and by simulators in code
			continue
		}
		if _, ok := settingFlags[name]; !ok {
			t.Errorf("settingFlags has no flag for app.Settings.%s", name)
		}
	}
	for field, flagName := range settingFlags {
		if fs.Lookup(flagName) == nil {
			t.Errorf("settingFlags maps %s to --%s, which is not a flag", field, flagName)
		}
		if _, ok := fields.FieldByName(field); !ok {
			t.Errorf("settingFlags maps %s, which is not a field of app.Settings", field)
		}
	}
}

// A bad value names the flag (or variable, or file key), the value and what
// it must look like, in one line plus where the flags are listed: not the
// whole usage.
func TestWorkerValueErrorsNameTheUnit(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/worker.yaml"
	if err := os.WriteFile(cfg, []byte("visibility_timeout: 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"duration without a unit", []string{"--wait-time", "5"}, nil,
			"tierq worker: --wait-time 5: want a duration with a unit, such as 5s or 1m\nrun 'tierq worker --help' for the flags\n"},
		{"not a duration", []string{"--max-snooze=soon"}, nil,
			"tierq worker: --max-snooze soon: want a duration such as 5s, 1m or 1.5s\nrun 'tierq worker --help' for the flags\n"},
		{"not a number", []string{"--concurrency", "many"}, nil,
			"tierq worker: --concurrency many: want a whole number, such as 8\nrun 'tierq worker --help' for the flags\n"},
		{"not a bool", []string{"--skip-checks=maybe"}, nil,
			"tierq worker: --skip-checks maybe: want true or false\nrun 'tierq worker --help' for the flags\n"},
		{"unknown flag", []string{"--queue"}, nil,
			"tierq worker: flag provided but not defined: --queue\nrun 'tierq worker --help' for the flags\n"},
		{"environment", nil, map[string]string{"TIERQ_RELEASE_DELAY": "30"},
			"tierq worker: TIERQ_RELEASE_DELAY=30: want a duration with a unit, such as 5s or 1m\n"},
		{"file", []string{"--config", cfg}, nil,
			"tierq worker: config " + cfg + ": visibility_timeout: 30: want a duration with a unit, such as 5s or 1m\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"worker"}, tt.args...), &out, &errOut)
			if code != 1 || errOut.String() != tt.want {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and:\n%s", code, errOut.String(), tt.want)
			}
		})
	}
}

func TestWorkerHelpListsFlagsWithTheirKinds(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"worker", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, want := range []string{"  -wait-time duration\n", "(default 20s)", "  -concurrency int\n", "  -skip-checks\n",
		"  -model-check string\n", "(default converse)", "Durations take a\nunit"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, errOut.String())
		}
	}
	if strings.Contains(errOut.String(), " value\n") {
		t.Errorf("help names a flag's kind \"value\":\n%s", errOut.String())
	}
}

// TestWorkerLogsAreJSONLines runs tierq worker as a user does (flags, and
// AWS_ENDPOINT_URL_* pointing at kumo and the Bedrock simulator) through its
// start-up checks, one job and a shutdown, and reads its stderr: every line
// is a JSON object, durations are strings such as "1.2s", nothing comes
// from the SDK's plain-text logger, and each event is one line.
func TestWorkerLogsAreJSONLines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: a worker on kumo and the Bedrock simulator")
	}
	urls, bucket, s3c := workerStack(t)
	ctx := t.Context()
	sqsc := emulator.SQS(os.Getenv("AWS_ENDPOINT_URL_SQS"))
	if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(urls["logs-jobs"]),
		MessageBody: aws.String(`{"version":"1","job_id":"log-job-1","task":"summarize","text":"A short note about logs."}`)}); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr testenv.Buffer
	done := make(chan int)
	go func() {
		done <- run(runCtx, []string{"worker", "--queue-url", urls["logs-jobs"], "--dlq-url", urls["logs-dlq"],
			"--results-bucket", bucket, "--s3-path-style", "--wait-time", "1s", "--drain-timeout", "2s"}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("results/log-job-1.json")})
		if err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("worker exited with %d before the job's result:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result after 30s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}

	events := map[string]int{}
	for i, line := range stderr.Lines() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line %d is not JSON: %q", i+1, line)
			continue
		}
		msg, _ := rec["msg"].(string)
		events[msg]++
		for k, v := range rec {
			// A duration written by slog's default is an integer of
			// nanoseconds: a second is 1e9.
			if n, ok := v.(float64); ok && n >= 1e9 {
				t.Errorf("line %d (%s): %s = %v looks like nanoseconds, want a duration string", i+1, msg, k, v)
			}
		}
		if took, ok := rec["took"]; ok {
			if s, _ := took.(string); s == "" {
				t.Errorf("took = %v, want a string", took)
			} else if _, err := time.ParseDuration(s); err != nil {
				t.Errorf("took = %q, want a Go duration: %v", s, err)
			}
		}
	}
	for _, ev := range []string{"start-up checks passed", "worker starting", "job finished", "worker stopped"} {
		if events[ev] != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", ev, events[ev], stderr.String())
		}
	}
}

// The worker's AWS clients log through its JSON logger, not the SDK's
// plain-text one on the process's stderr.
func TestAWSClientsLogThroughSlog(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	var b testenv.Buffer
	clients, err := newAWSClients(t.Context(), awsSettings{Log: app.NewLogger(&b, slog.LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	clients.SQS.Options().Logger.Logf(logging.Warn, "from %s", "sqs")
	clients.S3.Options().Logger.Logf(logging.Warn, "from %s", "s3")
	clients.Bedrock.Options().Logger.Logf(logging.Warn, "from %s", "bedrock")
	if mode := clients.S3.Options().ClientLogMode; mode != 0 {
		t.Errorf("ClientLogMode %v, want 0: no request or response is logged", mode)
	}
	lines := b.Lines()
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), b.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, `"level":"WARN","msg":"from `) || !strings.Contains(l, `"source":"aws-sdk"`) {
			t.Errorf("line %s, want a WARN from aws-sdk", l)
		}
	}
}

// workerStack starts kumo and the Bedrock simulator, points the AWS
// environment variables at them, and creates a job queue, a dead-letter
// queue and a results bucket.
func workerStack(t *testing.T) (urls map[string]string, bucket string, s3c *s3.Client) {
	t.Helper()
	kumoURL, stopKumo := emulator.Start()
	t.Cleanup(stopKumo)
	sim, err := bedrocksim.New(bedrocksim.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	for k, v := range map[string]string{
		"AWS_REGION": emulator.Region, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_ENDPOINT_URL_SQS": kumoURL, "AWS_ENDPOINT_URL_S3": kumoURL, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": simSrv.URL,
		// As emulator.S3: kumo neither checks nor returns checksums.
		"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
	} {
		t.Setenv(k, v)
	}
	ctx := t.Context()
	sqsc, s3c := emulator.SQS(kumoURL), emulator.S3(kumoURL)
	urls = map[string]string{}
	for _, q := range []string{"logs-jobs", "logs-dlq"} {
		out, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(emulator.Name(t, q))})
		if err != nil {
			t.Fatal(err)
		}
		urls[q] = *out.QueueUrl
	}
	bucket = emulator.Name(t, "logs-results")
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return urls, bucket, s3c
}

// A failed start-up check stops tierq worker with exit 1, every problem and
// the way to start anyway; --skip-checks starts it with a WARN.
func TestWorkerRefusesToStartOnFailedChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("kumo and the Bedrock simulator")
	}
	urls, bucket, _ := workerStack(t)
	args := []string{"worker", "--queue-url", urls["logs-jobs"] + "-gone", "--dlq-url", urls["logs-dlq"],
		"--results-bucket", bucket + "-gone", "--s3-path-style", "--wait-time", "1s"}
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, &out, &errOut)
	for _, want := range []string{"tierq worker: start-up checks failed (2):\n  - results bucket " + bucket + "-gone: does not exist",
		"\n  - job queue " + urls["logs-jobs"] + "-gone: does not exist in region us-east-1",
		"\n(fix the above, or start without the checks: --skip-checks / TIERQ_SKIP_CHECKS)\n"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	errOut.Reset()
	// The queue does not exist, so the worker stops at its first receive.
	code = run(ctx, append(args, "--skip-checks"), &out, &errOut)
	if !strings.Contains(errOut.String(), `"level":"WARN","msg":"start-up checks skipped","setting":"--skip-checks / TIERQ_SKIP_CHECKS"`) ||
		strings.Contains(errOut.String(), "start-up checks failed") {
		t.Errorf("with --skip-checks (exit %d), stderr:\n%s\nwant a WARN that the checks were skipped, and none run", code, errOut.String())
	}
}
