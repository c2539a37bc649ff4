package tiering_test

import (
	"strings"
	"testing"

	"github.com/tierq/tierq/tiering"
)

// reservedTier is a tiers file with one tier, for the Reserved tests; it
// is kept apart from config_test.go's so the two files change separately.
const reservedTier = `
tiers:
  - name: premium
    model_id: sonnet
    context_window: 1000
    max_output_tokens: 100
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 3, output_per_mtok: 15}
`

func TestReserved(t *testing.T) {
	t.Parallel()
	c, err := tiering.Load([]byte(reservedTier + `
provisioned:
  sonnet:
    reserved:
      input_per_1k_tpm_month: {one_month: 7.5, three_months: 6}
      output_per_1k_tpm_month: {three_months: 30}
      min_output_tpm: 20000
      step_tpm: 1000
    quota: {output_burndown: 5, tokens_per_minute: 2000000, requests_per_minute: 250}
  plain: {hourly_price_per_unit: {one_month: 1}}
`))
	if err != nil {
		t.Fatalf("Load = %v, want nil", err)
	}
	r := c.Provisioned["sonnet"].Reserved
	if r == nil {
		t.Fatal("provisioned[sonnet].reserved = nil, want the block")
	}
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"input one_month", r.InputPer1KTPMMonth.Price(tiering.ReservedOneMonth), 7.5},
		{"input three_months", r.InputPer1KTPMMonth.Price(tiering.ReservedThreeMonths), 6},
		// A term left out is not priced, never defaulted.
		{"output one_month", r.OutputPer1KTPMMonth.Price(tiering.ReservedOneMonth), 0},
		{"output three_months", r.OutputPer1KTPMMonth.Price(tiering.ReservedThreeMonths), 30},
		{"unknown term", r.OutputPer1KTPMMonth.Price("six_months"), 0},
		// The input minimum is left out: the launch note's 100,000.
		{"min input", r.MinInput(), 100_000},
		{"min output", r.MinOutput(), 20_000},
		{"step", r.StepTPM, 1000},
		{"burndown", c.Provisioned["sonnet"].Quota.OutputBurndown, 5},
		{"quota tpm", c.Provisioned["sonnet"].Quota.TokensPerMinute, 2_000_000},
		{"quota rpm", c.Provisioned["sonnet"].Quota.RequestsPerMinute, 250},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if p := c.Provisioned["plain"]; p.Reserved != nil || p.Quota != (tiering.Quota{}) {
		t.Errorf("provisioned[plain] = %+v, want no reserved block and an unknown quota", p)
	}
	if got := tiering.ReservedTerms(); len(got) != 2 || got[0] != tiering.ReservedOneMonth || got[1] != tiering.ReservedThreeMonths {
		t.Errorf("ReservedTerms() = %v, want one_month, three_months", got)
	}
}

func TestReservedMinimumsDefault(t *testing.T) {
	t.Parallel()
	var r tiering.Reserved
	if r.MinInput() != 100_000 || r.MinOutput() != 10_000 {
		t.Errorf("zero Reserved minimums = %v in, %v out; want 100,000 and 10,000", r.MinInput(), r.MinOutput())
	}
	zero := 0.0
	r.MinInputTPM, r.MinOutputTPM = &zero, &zero
	if r.MinInput() != 0 || r.MinOutput() != 0 {
		t.Errorf("explicit zero minimums = %v, %v; want 0, 0 (a zero given is kept)", r.MinInput(), r.MinOutput())
	}
}

func TestReservedRejects(t *testing.T) {
	t.Parallel()
	_, err := tiering.Load([]byte(reservedTier + `
provisioned:
  sonnet:
    reserved:
      input_per_1k_tpm_month: {one_month: -1, three_months: .nan}
      output_per_1k_tpm_month: {three_months: .inf}
      min_input_tpm: -5
      step_tpm: -1000
    quota: {output_burndown: 0.5, tokens_per_minute: -1, requests_per_minute: .inf}
  haiku:
    quota: {output_burndown: 101}
`))
	if err == nil {
		t.Fatal("Load = nil, want every reserved and quota problem")
	}
	want := []string{
		`provisioned["sonnet"].reserved.input_per_1k_tpm_month.one_month: must be a finite number >= 0 (got -1)`,
		`provisioned["sonnet"].reserved.input_per_1k_tpm_month.three_months: must be a finite number >= 0 (got NaN)`,
		`provisioned["sonnet"].reserved.output_per_1k_tpm_month.three_months: must be a finite number >= 0 (got +Inf)`,
		`provisioned["sonnet"].reserved.min_input_tpm: must be a finite number >= 0 (got -5)`,
		`provisioned["sonnet"].reserved.step_tpm: must be a finite number >= 0 (got -1000)`,
		`provisioned["sonnet"].quota.tokens_per_minute: must be a finite number >= 0 (got -1)`,
		`provisioned["sonnet"].quota.requests_per_minute: must be a finite number >= 0 (got +Inf)`,
		`provisioned["sonnet"].quota.output_burndown: must be between 1 and 100, or 0 for unknown (got 0.5)`,
		`provisioned["haiku"].quota.output_burndown: must be between 1 and 100, or 0 for unknown (got 101)`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("Load error lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "min_output_tpm") {
		t.Errorf("Load error names min_output_tpm, which was left out (default 10,000):\n%s", got)
	}
}
