package sizing_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

func TestAnalyzeNoData(t *testing.T) {
	t.Parallel()
	rep, err := sizing.Analyze(&sizing.Data{Source: "emf"}, sizing.DefaultConfig(tiering.Default()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0] != "no usage found: nothing to size" {
		t.Errorf("warnings = %q, want only the no-usage warning", rep.Warnings)
	}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"text": func(b *bytes.Buffer) error { return rep.WriteText(b) },
		"json": func(b *bytes.Buffer) error { return rep.WriteJSON(b) },
		"html": func(b *bytes.Buffer) error { return rep.WriteHTML(b) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Errorf("%s of an empty report: %v", name, err)
		}
	}
}

// A model asked for in CloudWatch that had no traffic is reported, with
// nothing to size and no chart of an empty line's NaNs.
func TestAnalyzeQuietModel(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	d := &sizing.Data{
		Source: "cloudwatch", Start: start, End: start.Add(31 * 24 * time.Hour),
		Models: []*sizing.ModelSeries{{ModelID: haiku, Minutes: make([]sizing.Minute, 31*1440), Priced: true, ThrottlesKnown: true}},
	}
	tiers := tiering.Default()
	tiers.Provisioned = map[string]tiering.Provisioned{haiku: {TokensPerMinutePerUnit: 1000, HourlyPricePerUnit: tiering.ProvisionedPrices{OneMonth: 1}}}
	rep, err := sizing.Analyze(d, sizing.DefaultConfig(tiers))
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Models[0]
	if m.Recommendation.Verdict != sizing.VerdictNoTraffic || m.Sizing != nil || len(m.Notes) != 0 {
		t.Errorf("quiet model: verdict %s, sizing %v, notes %q; want no-traffic, none, none", m.Recommendation.Verdict, m.Sizing, m.Notes)
	}
	var html, js bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if s := html.String(); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
		t.Error("HTML of a quiet model contains NaN or Inf")
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js.Bytes()) {
		t.Error("JSON report is not valid JSON")
	}
}

// Without on-demand cost there is no break-even: JSON must not carry +Inf
// (encoding/json rejects it), and the advice must not divide by zero.
func TestAnalyzeZeroCostTraffic(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	minutes := make([]sizing.Minute, 31*1440)
	for i := range minutes {
		minutes[i].InputTokens = 100 // free tokens: cost 0
	}
	d := &sizing.Data{Start: start, End: start.Add(31 * 24 * time.Hour),
		Models: []*sizing.ModelSeries{{ModelID: haiku, Minutes: minutes, Priced: true, ThrottlesKnown: true}}}
	tiers := tiering.Default()
	tiers.Provisioned = map[string]tiering.Provisioned{haiku: {TokensPerMinutePerUnit: 1000, HourlyPricePerUnit: tiering.ProvisionedPrices{OneMonth: 1}}}
	rep, err := sizing.Analyze(d, sizing.DefaultConfig(tiers))
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Models[0]
	if m.Recommendation.Verdict != sizing.VerdictOnDemand || m.Sizing.Terms[1].BreakEvenTrafficShare != nil {
		t.Errorf("verdict %s, break-even %v; want on-demand and none", m.Recommendation.Verdict, m.Sizing.Terms[1].BreakEvenTrafficShare)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
}

func TestWriteFiles(t *testing.T) {
	t.Parallel()
	rep, err := sizing.Analyze(&sizing.Data{Source: "emf"}, sizing.DefaultConfig(tiering.Default()))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rep.WriteFiles(dir+"/r.json", dir+"/r.html"); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteFiles(dir+"/missing/r.json", ""); err == nil || !strings.Contains(err.Error(), "write "+dir+"/missing/r.json") {
		t.Errorf("WriteFiles into a missing folder = %v, want an error naming the file", err)
	}
}
