package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierq/tierq/internal/demo"
	"github.com/tierq/tierq/jobv1"
)

// TestDemoEndToEnd runs `make demo`'s pipeline over the corpus: real SDK
// clients, kumo's SQS and S3, the Bedrock simulator, two workers. It checks
// that every message is accounted for exactly once and that each kind of
// job ends the way the corpus README says it should.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo")
	}
	out := t.TempDir()
	var buf bytes.Buffer
	rep, err := demo.Run(context.Background(), demo.Options{Corpus: "../../testdata/corpus", Out: out}, &buf)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, buf.String())
	}
	jobs := countLines(t, "../../testdata/corpus/jobs.jsonl") + countLines(t, "../../testdata/corpus/docs.jsonl")
	malformed, _ := filepath.Glob("../../testdata/corpus/malformed/*")

	// missing-task.json has a usable job_id, so it gets a failed result;
	// the other malformed messages cannot, so they are dead-lettered.
	if got, want := len(rep.Results), jobs+1; got != want {
		t.Errorf("%d results, want %d (one per job plus the job without a task)", got, want)
	}
	if got, want := len(rep.DeadLetters), len(malformed)-1; got != want {
		t.Errorf("%d dead letters, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if seen[r.JobID] {
			t.Errorf("job %s has two results", r.JobID)
		}
		seen[r.JobID] = true
	}
	for _, d := range rep.DeadLetters {
		if !strings.Contains(d.Reason, "not a job") {
			t.Errorf("dead letter reason %q does not say why", d.Reason)
		}
	}

	status := map[string]string{}
	for _, r := range rep.Results {
		status[r.JobID] = r.Status
	}
	for id, want := range map[string]string{
		"globex-hr-case-0017":             jobv1.StatusBlocked, // SSN
		"acme-receipt-0040":               jobv1.StatusBlocked, // card number
		"acme-ticket-0030":                jobv1.StatusBlocked, // prompt injection
		"umbrella-moderation-report-0018": jobv1.StatusBlocked, // denied topic
		"acme-callback-0016":              jobv1.StatusSucceeded,
		"initech-rewrite-0058":            jobv1.StatusSucceeded,
	} {
		if status[id] != want {
			t.Errorf("%s: status %q, want %q", id, status[id], want)
		}
	}
	if len(rep.Escalations) != 1 || !strings.HasPrefix(rep.Escalations[0], "initech-rewrite-0058") {
		t.Errorf("escalations = %v, want initech-rewrite-0058 only", rep.Escalations)
	}
	if rep.Masked < 6 {
		t.Errorf("%d masked jobs, want at least the corpus's 6 with e-mails and phone numbers", rep.Masked)
	}

	files, _ := filepath.Glob(filepath.Join(out, "results", "*.json"))
	if len(files) != len(rep.Results) {
		t.Errorf("%d result files written, want %d", len(files), len(rep.Results))
	}
	emf, err := os.ReadFile(filepath.Join(out, "metrics.emf"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(emf, []byte(`"JobId"`)); n != len(rep.Results) {
		t.Errorf("%d job EMF lines, want one per result (%d)", n, len(rep.Results))
	}
	if !bytes.Contains(emf, []byte(`"ConcurrencyLimit"`)) {
		t.Error("metrics.emf has no limiter state line")
	}
	for _, want := range []string{"succeeded", "economy", "dead-lettered: 3", "demo-out", "metrics.emf"} {
		if want == "demo-out" {
			want = out
		}
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
	log, err := os.ReadFile(filepath.Join(out, "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The documents must never reach the logs.
	for _, secret := range []string{"123-45-6789", "4111 1111 1111 1111", "Ignore all previous instructions"} {
		if bytes.Contains(log, []byte(secret)) {
			t.Errorf("worker.log contains document content %q", secret)
		}
	}
	var first map[string]any
	if err := json.Unmarshal(bytes.SplitN(log, []byte("\n"), 2)[0], &first); err != nil {
		t.Errorf("worker.log is not JSON lines: %v", err)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			n++
		}
	}
	return n
}
