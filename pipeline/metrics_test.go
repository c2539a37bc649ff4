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
	path := filepath.Join("..", "testdata", "results", "emf-lines.jsonl")
	if *Update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (go test -update creates it): %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("EMF lines differ from %s:\ngot:\n%s\nwant:\n%s", path, buf.Bytes(), want)
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
