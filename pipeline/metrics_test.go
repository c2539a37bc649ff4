package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/tiering"
)

func TestEMFGolden(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 12, 0, 1, 250_000_000, time.UTC)
	succeeded := &jobv1.Result{
		JobID: "job-42", Status: jobv1.StatusSucceeded, Tier: "standard", ModelID: "us.anthropic.claude-haiku-4-5-20251001-v1:0",
		Usage:    tiering.Usage{InputTokens: 1200, OutputTokens: 310},
		Cost:     tiering.Cost{TotalUSD: 0.00275},
		Attempts: 3, Timings: jobv1.Timings{FinishedAt: at, ModelMs: 2140},
		Metadata: map[string]string{"tenant": "acme"},
	}
	failed := &jobv1.Result{JobID: "job-43", Status: jobv1.StatusFailed, Timings: jobv1.Timings{FinishedAt: at}}
	var buf bytes.Buffer
	w := &emfWriter{w: &buf}
	if err := w.write(newEMFLine("tierq", succeeded, jobMetrics{throttles: 2, interventions: 1})); err != nil {
		t.Fatal(err)
	}
	if err := w.write(newEMFLine("tierq", failed, jobMetrics{})); err != nil {
		t.Fatal(err)
	}
	checkFileGolden(t, filepath.Join("..", "testdata", "results", "emf-lines.jsonl"), buf.Bytes())
}

// TestEMFCallsGolden writes the lines of an escalated job whose first call
// was throttled on the economy model and spilled over to its global
// profile: a throttles-only call line, a call line per answered call, and
// the job line. Sizing reads this file (its per-call attribution tests).
func TestEMFCallsGolden(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 12, 0, 1, 250_000_000, time.UTC)
	eco, ecoGlobal, std := "us.amazon.nova-micro-v1:0", "global.amazon.nova-micro-v1:0", "us.anthropic.claude-haiku-4-5-20251001-v1:0"
	calls := []jobv1.Call{
		{At: at.Add(-3 * time.Second), Tier: "economy", ModelID: eco, Throttles: 4},
		{At: at.Add(-2 * time.Second), Tier: "economy", ModelID: ecoGlobal, ServiceTier: "default",
			Usage: tiering.Usage{InputTokens: 1000, OutputTokens: 8192}, Cost: tiering.Cost{TotalUSD: 0.00118188}},
		{At: at, Tier: "standard", ModelID: std, ServiceTier: "flex",
			Usage: tiering.Usage{InputTokens: 1000, OutputTokens: 9000, CacheReadTokens: 500, CacheWriteTokens: 100},
			Cost:  tiering.Cost{TotalUSD: 0.0254}},
	}
	r := &jobv1.Result{
		JobID: "job-44", Status: jobv1.StatusSucceeded, Tier: "standard", ModelID: std, ServiceTier: "flex",
		Calls: calls[1:], Usage: calls[1].Usage.Add(calls[2].Usage), Cost: calls[1].Cost.Add(calls[2].Cost),
		Attempts: 6, Timings: jobv1.Timings{FinishedAt: at.Add(10 * time.Millisecond), ModelMs: 9000},
		Metadata: map[string]string{"tenant": "acme"},
	}
	var buf bytes.Buffer
	w := &emfWriter{w: &buf}
	for _, c := range calls {
		if err := w.writeJSON(newEMFCallLine("tierq", r, c, r.Status), "call"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.write(newEMFLine("tierq", r, jobMetrics{throttles: 4})); err != nil {
		t.Fatal(err)
	}
	checkFileGolden(t, filepath.Join("..", "testdata", "results", "emf-calls.jsonl"), buf.Bytes())
}

func checkFileGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (go test -update creates it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("EMF lines differ from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestEmitLimiterStates(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p, err := New(Config{ResultsBucket: "r", Tiers: tiering.Default()}, Deps{Converser: &fakeConverser{}, Store: &fakeStore{},
		Metrics: &buf, Now: func() time.Time { return time.UnixMilli(1795521600000) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EmitLimiterStates([]limiter.State{{Model: "m1", Limit: 7, InFlight: 5, Waiting: 2, TokenBudget: 90000, TokensInFlight: 40000}}); err != nil {
		t.Fatal(err)
	}
	want := `{"_aws":{"Timestamp":1795521600000,"CloudWatchMetrics":[{"Namespace":"tierq","Dimensions":[["ModelId"]],"Metrics":[` +
		`{"Name":"ConcurrencyLimit","Unit":"Count"},{"Name":"InFlight","Unit":"Count"},{"Name":"Waiting","Unit":"Count"},` +
		`{"Name":"TokenBudget","Unit":"Count"},{"Name":"TokensInFlight","Unit":"Count"}]}]},` +
		`"ModelId":"m1","ConcurrencyLimit":7,"InFlight":5,"Waiting":2,"TokenBudget":90000,"TokensInFlight":40000}` + "\n"
	if buf.String() != want {
		t.Errorf("got  %s\nwant %s", buf.String(), want)
	}
}
