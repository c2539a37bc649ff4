package demo

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// The comparison prices each result's whole usage (every call, escalations
// included) at the last tier's prices, and prints both ratios.
func TestReportRatio(t *testing.T) {
	t.Parallel()
	tiers := tiering.Default()
	last := tiers.Tiers[len(tiers.Tiers)-1]
	rep := newReport(tiers)
	results := []jobv1.Result{
		{JobID: "cheap", Status: jobv1.StatusSucceeded, Tier: tiers.Tiers[0].Name,
			Usage: jobv1.Usage{InputTokens: 1000, OutputTokens: 200, GuardrailUnits: jobv1.GuardrailUnits{Content: 2, Topics: 2}}},
		{JobID: "escalated", Status: jobv1.StatusSucceeded, Tier: tiers.Tiers[1].Name,
			Usage: jobv1.Usage{InputTokens: 3000, OutputTokens: 900, CacheReadTokens: 500}},
		{JobID: "blocked", Status: jobv1.StatusBlocked, Tier: tiers.Tiers[0].Name,
			Usage: jobv1.Usage{GuardrailUnits: jobv1.GuardrailUnits{Content: 1}}},
		{JobID: "invalid", Status: jobv1.StatusFailed},
	}
	var wantTiered, wantLast tiering.Cost
	for _, r := range results {
		tier, _ := tiers.Tier(r.Tier)
		if r.Tier != "" {
			r.Cost = tier.Prices.Cost(r.Usage)
		}
		wantTiered = wantTiered.Add(r.Cost)
		wantLast = wantLast.Add(last.Prices.Cost(r.Usage))
		rep.add(r)
	}
	if rep.LastTier != last.Name {
		t.Errorf("LastTier = %q, want %q", rep.LastTier, last.Name)
	}
	if !near(rep.Tiered.TotalUSD, wantTiered.TotalUSD) || !near(rep.AllLast.TotalUSD, wantLast.TotalUSD) ||
		!near(rep.AllLast.GuardrailUSD, wantLast.GuardrailUSD) {
		t.Errorf("Tiered %+v AllLast %+v, want %+v and %+v", rep.Tiered, rep.AllLast, wantTiered, wantLast)
	}
	model, withGuardrail, ok := rep.Ratio()
	wantModel := (wantTiered.TotalUSD - wantTiered.GuardrailUSD) / (wantLast.TotalUSD - wantLast.GuardrailUSD)
	if !ok || !near(model, wantModel) || !near(withGuardrail, wantTiered.TotalUSD/wantLast.TotalUSD) {
		t.Errorf("Ratio() = %v, %v, %v; want %v, %v, true", model, withGuardrail, ok, wantModel, wantTiered.TotalUSD/wantLast.TotalUSD)
	}
	if !(model < withGuardrail && withGuardrail < 1) {
		// The guardrail costs the same on every tier, so it dilutes the saving.
		t.Errorf("ratios model %v, with guardrail %v: want model < with guardrail < 1", model, withGuardrail)
	}

	var buf bytes.Buffer
	rep.printRatio(&buf)
	for _, want := range []string{
		"tiered vs all on " + last.Name,
		formatRatio(model), formatRatio(withGuardrail),
		formatUSD(wantLast.TotalUSD), formatUSD(wantTiered.TotalUSD - wantTiered.GuardrailUSD),
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("printRatio lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestReportRatioNothingUsed(t *testing.T) {
	t.Parallel()
	rep := newReport(tiering.Default())
	rep.add(jobv1.Result{JobID: "invalid", Status: jobv1.StatusFailed})
	if _, _, ok := rep.Ratio(); ok {
		t.Error("Ratio() ok with no usage, want false")
	}
	var buf bytes.Buffer
	rep.printRatio(&buf)
	if !strings.Contains(buf.String(), "nothing to compare") {
		t.Errorf("printRatio = %q, want it to say there is nothing to compare", buf.String())
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
