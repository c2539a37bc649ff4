package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierq/tierq/internal/demo"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
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
	// The three long documents land by task, not by length (tiering/doc.go):
	// a summary fits and suits standard; extraction from a contract full of
	// tables, and open-ended instructions over a long design, go to premium.
	tier := map[string]jobv1.Result{}
	for _, r := range rep.Results {
		tier[r.JobID] = r
	}
	for id, want := range map[string][2]string{
		"globex-annual-report-2025":  {"standard", "size"},
		"acme-msa-vandelay-2026":     {"premium", "task-extract"},
		"initech-platform-design-v3": {"premium", "task-custom"},
	} {
		if r := tier[id]; r.Tier != want[0] || r.TierRule != want[1] {
			t.Errorf("%s: tier %s by %s (%s), want %s by %s", id, r.Tier, r.TierRule, r.TierReason, want[0], want[1])
		}
	}
	checkRatio(t, rep, buf.String())
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
	// One job line per result; a job's call lines (Kind "call") come on top.
	n := 0
	for line := range bytes.Lines(emf) {
		if bytes.Contains(line, []byte(`"JobId"`)) && !bytes.Contains(line, []byte(`"Kind":"call"`)) {
			n++
		}
	}
	if n != len(rep.Results) {
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

// checkRatio checks the summary's tiered-versus-all-premium figures against
// the results themselves: the run's cost is the sum of the results' costs,
// the comparison prices each result's usage at premium's prices, and both
// ratios are printed and below 100%.
func checkRatio(t *testing.T, rep *demo.Report, summary string) {
	t.Helper()
	premium, _ := tiering.Default().Tier("premium")
	var tiered, all tiering.Cost
	for _, r := range rep.Results {
		tiered = tiered.Add(r.Cost)
		all = all.Add(premium.Prices.Cost(r.Usage))
	}
	if !near(rep.Tiered.TotalUSD, tiered.TotalUSD) || !near(rep.AllLast.TotalUSD, all.TotalUSD) ||
		!near(rep.AllLast.GuardrailUSD, all.GuardrailUSD) {
		t.Errorf("report: tiered %+v, all premium %+v; from the results: %+v, %+v", rep.Tiered, rep.AllLast, tiered, all)
	}
	model, withGuardrail, ok := rep.Ratio()
	if !ok || !(model > 0 && model < 1) || !(withGuardrail > 0 && withGuardrail < 1) {
		t.Fatalf("Ratio() = %v, %v, %v; want both in (0, 1)", model, withGuardrail, ok)
	}
	if want := demo.ModelUSD(tiered) / demo.ModelUSD(all); !near(model, want) {
		t.Errorf("model-cost ratio %v, want %v from the results", model, want)
	}
	if want := tiered.TotalUSD / all.TotalUSD; !near(withGuardrail, want) {
		t.Errorf("with-guardrail ratio %v, want %v from the results", withGuardrail, want)
	}
	if !strings.Contains(summary, "tiered vs all on premium") {
		t.Fatalf("summary lacks the tiered-versus-all-premium comparison:\n%s", summary)
	}
	for _, line := range []struct {
		label       string
		tiered, all float64
		ratio       float64
	}{
		{"model cost", demo.ModelUSD(tiered), demo.ModelUSD(all), model},
		{"with guardrail", tiered.TotalUSD, all.TotalUSD, withGuardrail},
	} {
		want := []string{line.label, fmt.Sprintf("%.6f", line.tiered), fmt.Sprintf("%.6f", line.all), fmt.Sprintf("%.1f%%", 100*line.ratio)}
		if !hasLine(summary, want) {
			t.Errorf("summary has no line with %q:\n%s", want, summary)
		}
	}
}

// hasLine reports whether one line of text holds every part, in order.
func hasLine(text string, parts []string) bool {
	for line := range strings.Lines(text) {
		rest, ok := line, true
		for _, p := range parts {
			_, after, found := strings.Cut(rest, p)
			if !found {
				ok = false
				break
			}
			rest = after
		}
		if ok {
			return true
		}
	}
	return false
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestDemoTiersFile runs the demo with a tiers file of its own: submit, the
// workers and the report must all use it, which the renamed tiers show.
func TestDemoTiersFile(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo")
	}
	dir := t.TempDir()
	yaml := string(tiering.DefaultYAML())
	for old, name := range map[string]string{"economy": "small", "standard": "medium", "premium": "large"} {
		if !strings.Contains(yaml, "- name: "+old+"\n") {
			t.Fatalf("default.yaml has no tier %s to rename", old)
		}
		yaml = strings.Replace(yaml, "- name: "+old+"\n", "- name: "+name+"\n", 1)
	}
	tiersFile := filepath.Join(dir, "renamed.yaml")
	corpus := filepath.Join(dir, "corpus")
	writeFile(t, tiersFile, yaml)
	writeFile(t, filepath.Join(corpus, "jobs.jsonl"),
		`{"version":"1","job_id":"short-summary","task":"summarize","text":"The board met on Tuesday and agreed to sell the mill."}`+"\n"+
			`{"version":"1","job_id":"asks-for-large","task":"summarize","tier_override":"large","text":"The board met again on Friday."}`+"\n")
	writeFile(t, filepath.Join(corpus, "docs.jsonl"),
		`{"version":"1","job_id":"table-extract","task":"extract","fields":["total"],"text":"| item | total |\n|---|---|\n| mill | 10 |\n"}`+"\n")
	writeFile(t, filepath.Join(corpus, "malformed", "not-json.txt"), "not a job\n")

	var buf bytes.Buffer
	rep, err := demo.Run(context.Background(), demo.Options{Corpus: corpus, Out: filepath.Join(dir, "out"), Tiers: tiersFile, FaultRate: -1}, &buf)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, buf.String())
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		got[r.JobID] = r.Tier + " " + r.Status
	}
	for id, want := range map[string]string{
		"short-summary":  "small " + jobv1.StatusSucceeded,
		"asks-for-large": "large " + jobv1.StatusSucceeded,
		"table-extract":  "medium " + jobv1.StatusSucceeded,
	} {
		if got[id] != want {
			t.Errorf("%s: %q, want %q (results %v)", id, got[id], want, got)
		}
	}
	for _, want := range []string{"tiers: " + tiersFile, "tiered vs all on large"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestDemoTiersFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unknownModel := filepath.Join(dir, "unknown-model.yaml")
	writeFile(t, unknownModel, strings.Replace(string(tiering.DefaultYAML()),
		"model_id: us.amazon.nova-micro-v1:0", "model_id: us.example.no-such-model-v1:0", 1))
	for name, tt := range map[string]struct{ path, want string }{
		"missing file":  {filepath.Join(dir, "nope.yaml"), "read tiers file"},
		"invalid file":  {writeFile(t, filepath.Join(dir, "bad.yaml"), "tiers: []\n"), "tiers: at least one tier"},
		"unknown model": {unknownModel, `"us.example.no-such-model-v1:0" is not one the Bedrock simulator serves`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := demo.Run(context.Background(), demo.Options{Out: filepath.Join(dir, name), Tiers: tt.path}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run with tiers %s: error %v, want one containing %q", tt.path, err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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
