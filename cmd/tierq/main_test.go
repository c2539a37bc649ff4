package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/iampolicy"
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
	for _, want := range []string{"QueueURL", "DeadLetterQueueURL", "results bucket", "WaitTime", "tierq worker --help"} {
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
