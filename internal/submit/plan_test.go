package submit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierq/tierq/internal/submit"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(a), math.Abs(b)) }

// TestDryRunCorpus plans testdata/corpus/jobs.jsonl and checks the plan
// against tiering itself: the same classification and EstimateRange per
// job, summed per tier.
func TestDryRunCorpus(t *testing.T) {
	t.Parallel()
	path := filepath.Join(corpus, "jobs.jsonl")
	cfg := tiering.Default()

	type row struct {
		jobs, tokens int
		low, high    float64
	}
	want := map[string]*row{}
	wantTier := map[string]string{}
	var total row
	for i, line := range bytes.Split(mustRead(t, path), []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		j, err := jobv1.ParseJob(line)
		if err != nil {
			t.Fatalf("%s:%d: corpus job does not parse: %v", path, i+1, err)
		}
		f := tiering.NewFacts(j.Task, j.Text)
		// Like the worker: every part of the prompt counts.
		f.EstimatedTokens = tiering.PromptTokens(j, j.Text)
		f.Override, f.Hint = j.TierOverride, j.TierHint
		low, high, d, err := cfg.EstimateRange(f)
		if err != nil {
			t.Fatalf("%s: tiering cannot plan it: %v", j.JobID, err)
		}
		wantTier[j.JobID] = d.Tier
		for _, r := range []*row{rowFor(want, d.Tier), &total} {
			r.jobs++
			r.tokens += f.EstimatedTokens
			r.low += low.TotalUSD
			r.high += high.TotalUSD
		}
	}

	var out, progress bytes.Buffer
	sum, err := submit.Run(context.Background(), submit.Options{Paths: []string{path}, DryRun: true}, submit.Deps{}, &progress, &out)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, progress.String())
	}
	plan := sum.Plan
	if plan == nil {
		t.Fatal("Summary.Plan is nil after a dry run")
	}
	if len(plan.Jobs) != len(wantTier) || plan.Total.Jobs != len(wantTier) {
		t.Errorf("plan has %d jobs, %d planned; want all %d", len(plan.Jobs), plan.Total.Jobs, len(wantTier))
	}
	for _, jp := range plan.Jobs {
		if jp.Err != nil || jp.Decision.Tier != wantTier[jp.JobID] {
			t.Errorf("job %s: tier %q err %v; want tier %q", jp.JobID, jp.Decision.Tier, jp.Err, wantTier[jp.JobID])
		}
	}
	if len(plan.Tiers) != len(cfg.Tiers) {
		t.Fatalf("%d tier rows, want one per configured tier (%d)", len(plan.Tiers), len(cfg.Tiers))
	}
	var sumRows row
	for i, tp := range plan.Tiers {
		if tp.Tier != cfg.Tiers[i].Name {
			t.Errorf("row %d is %q, want %q (configuration order)", i, tp.Tier, cfg.Tiers[i].Name)
		}
		w := rowFor(want, tp.Tier)
		if tp.Jobs != w.jobs || tp.InputTokens != w.tokens || !near(tp.Low.TotalUSD, w.low) || !near(tp.High.TotalUSD, w.high) {
			t.Errorf("tier %s: jobs %d tokens %d cost %v–%v; want %d, %d, %v–%v",
				tp.Tier, tp.Jobs, tp.InputTokens, tp.Low.TotalUSD, tp.High.TotalUSD, w.jobs, w.tokens, w.low, w.high)
		}
		sumRows.jobs += tp.Jobs
		sumRows.tokens += tp.InputTokens
		sumRows.low += tp.Low.TotalUSD
		sumRows.high += tp.High.TotalUSD
	}
	tt := plan.Total
	if tt.Jobs != sumRows.jobs || tt.InputTokens != sumRows.tokens || !near(tt.Low.TotalUSD, sumRows.low) || !near(tt.High.TotalUSD, sumRows.high) {
		t.Errorf("total %+v is not the sum of the rows %+v", tt, sumRows)
	}
	if !near(tt.Low.TotalUSD, total.low) || !near(tt.High.TotalUSD, total.high) || tt.Low.TotalUSD >= tt.High.TotalUSD {
		t.Errorf("total cost %v–%v, want %v–%v with low < high", tt.Low.TotalUSD, tt.High.TotalUSD, total.low, total.high)
	}

	// The printed table shows the same figures.
	text := out.String()
	for _, tp := range append(plan.Tiers, tt) {
		fields := []string{tp.Tier, fmt.Sprint(tp.Jobs)}
		if !hasRow(text, fields) {
			t.Errorf("output has no row starting %q:\n%s", fields, text)
		}
	}
	if !strings.Contains(text, "TIER") || !strings.Contains(text, "COST LOW (USD)") || !strings.Contains(text, "Nothing was sent") {
		t.Errorf("output lacks the table header or the nothing-sent note:\n%s", text)
	}
	if strings.Contains(text, "Jobs:") {
		t.Errorf("per-job lines printed without Verbose:\n%s", text)
	}
}

func rowFor[R any](m map[string]*R, k string) *R {
	if m[k] == nil {
		m[k] = new(R)
	}
	return m[k]
}

// hasRow reports whether a line of text starts with the given fields.
func hasRow(text string, fields []string) bool {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

func TestDryRunReportsWhatCannotRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	huge := strings.Repeat("word ", 200_000) // ~250k tokens: more than any context window
	path := writeJSONL(t, dir, "jobs.jsonl",
		job("fine", "A short memo."),
		map[string]any{"version": "1", "job_id": "ghost-tier", "task": "summarize", "tier_override": "platinum", "text": "x"},
		job("huge", huge),
		map[string]any{"version": "1", "job_id": "stored", "task": "summarize", "document_uri": "s3://tierq-docs/k.txt"},
		"{broken",
	)
	var out, progress bytes.Buffer
	sum, err := submit.Run(context.Background(), submit.Options{Paths: []string{path}, DryRun: true, Verbose: true}, submit.Deps{}, &progress, &out)
	if !errors.Is(err, submit.ErrSkipped) {
		t.Errorf("dry run error = %v, want ErrSkipped for the broken line", err)
	}
	wantErr := map[string]error{"ghost-tier": tiering.ErrUnknownTier, "huge": tiering.ErrTooLarge, "stored": submit.ErrByReference}
	for _, jp := range sum.Plan.Jobs {
		if w := wantErr[jp.JobID]; w != nil && !errors.Is(jp.Err, w) {
			t.Errorf("job %s: err %v, want %v", jp.JobID, jp.Err, w)
		}
	}
	if sum.Plan.Total.Jobs != 1 {
		t.Errorf("planned %d, want only \"fine\"", sum.Plan.Total.Jobs)
	}
	text := out.String()
	for _, want := range []string{
		"Not planned (3):",
		"ghost-tier", "cannot run: ", "unknown tier",
		"huge", "document too large",
		"stored", "by reference: size unknown, not estimated",
		"Jobs:", // verbose
		"WARNING: 1 job is over the inline limit",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// Verbose: one line per valid job, with tier, rule and costs for "fine".
	if !hasRow(text, []string{"fine", "economy", "size"}) {
		t.Errorf("verbose output lacks fine's line:\n%s", text)
	}
	if !strings.Contains(progress.String(), path+":5: ") {
		t.Errorf("broken line not reported with its number:\n%s", progress.String())
	}
}

func TestDryRunCorpusDocsPlanUploads(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	sum, err := submit.Run(context.Background(), submit.Options{
		Paths: []string{filepath.Join(corpus, "docs.jsonl")}, DryRun: true,
		InputBucket: "tierq-inputs", InlineLimit: 64 << 10,
	}, submit.Deps{}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Plan.Total.Jobs != 3 || sum.Uploaded != 3 {
		t.Errorf("planned %d, would upload %d; want 3 and 3", sum.Plan.Total.Jobs, sum.Uploaded)
	}
	if !strings.Contains(out.String(), "3 documents over the inline limit of 65536 bytes would be uploaded to s3://tierq-inputs/inputs/") {
		t.Errorf("output lacks the upload note:\n%s", out.String())
	}
}

func TestDryRunNeedsNoClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No queue URL and no clients: a dry run must not touch AWS.
	if _, err := submit.Run(context.Background(), submit.Options{Paths: []string{dir}, DryRun: true}, submit.Deps{}, nil, nil); err != nil {
		t.Errorf("dry run without clients: %v", err)
	}
	// A real run without clients is refused up front, not with a nil panic.
	if _, err := submit.Run(context.Background(), sendOpts(dir), submit.Deps{}, nil, nil); err == nil {
		t.Error("run without an SQS client succeeded")
	}
}

// A dry run with flex on a tier shows both costs and the saving; without
// service tiers or caching it shows no saving line. The default-tier
// figures of the flex plan are the plain plan's figures.
func TestDryRunShowsTheSaving(t *testing.T) {
	t.Parallel()
	path := filepath.Join(corpus, "jobs.jsonl")
	run := func(cfg *tiering.Config) (*submit.Plan, string) {
		var out, progress bytes.Buffer
		sum, err := submit.Run(context.Background(), submit.Options{Paths: []string{path}, DryRun: true}, submit.Deps{Tiers: cfg}, &progress, &out)
		if err != nil {
			t.Fatalf("dry run: %v\n%s", err, progress.String())
		}
		return sum.Plan, out.String()
	}
	plain, plainText := run(tiering.Default())
	if strings.Contains(plainText, "save") {
		t.Errorf("a plan without service tiers or caching shows a saving:\n%s", plainText)
	}
	flex := tiering.Default()
	for i := range flex.Tiers {
		p := flex.Tiers[i].Prices
		flex.Tiers[i].ServiceTier = tiering.ServiceTierFlex
		flex.Tiers[i].Prices.ServiceTiers = map[string]tiering.TokenPrices{tiering.ServiceTierFlex: {
			InputPerMTok: p.InputPerMTok / 2, OutputPerMTok: p.OutputPerMTok / 2,
			CacheReadPerMTok: p.CacheReadPerMTok / 2, CacheWritePerMTok: p.CacheWritePerMTok / 2, CacheWrite1hPerMTok: p.CacheWrite1hPerMTok / 2}}
	}
	if err := flex.Validate(); err != nil {
		t.Fatal(err)
	}
	plan, text := run(flex)
	tot := plan.Total
	if !near(tot.StandardLow.TotalUSD, plain.Total.Low.TotalUSD) || !near(tot.StandardHigh.TotalUSD, plain.Total.High.TotalUSD) {
		t.Errorf("default-tier figures %v–%v, want the plain plan's %v–%v", tot.StandardLow.TotalUSD, tot.StandardHigh.TotalUSD, plain.Total.Low.TotalUSD, plain.Total.High.TotalUSD)
	}
	// Tokens at half price; the guardrail is not discounted.
	if wantLow := plain.Total.Low.TotalUSD - (plain.Total.Low.TotalUSD-plain.Total.Low.GuardrailUSD)/2; !near(tot.Low.TotalUSD, wantLow) {
		t.Errorf("flex low %v, want %v (tokens at half price, guardrail unchanged)", tot.Low.TotalUSD, wantLow)
	}
	if !strings.Contains(text, "Service tiers and prompt caching as configured (economy: flex; standard: flex; premium: flex)") ||
		!strings.Contains(text, "Low: saves ") || !strings.Contains(text, "high: saves ") {
		t.Errorf("no saving line:\n%s", text)
	}

	// Caching a long prompt: low reads it (cheaper), high writes it
	// (dearer than plain input), and the line says both ways.
	cached := tiering.Default()
	for i := range cached.Tiers {
		cached.Tiers[i].SystemPrompts = map[string]string{"default": strings.Repeat("Keep figures exactly as written. ", 700)}
	}
	// The shipped standard and premium tiers cache prompts this long.
	if _, text := run(cached); !strings.Contains(text, "(standard: cache 5m; premium: cache 5m)") || !strings.Contains(text, "Low: saves ") ||
		!strings.Contains(text, "more.") {
		t.Errorf("caching line does not say low saves and high costs more:\n%s", text)
	}
}
