package sizing_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

func TestReservedTPM(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                      string
		p95, headroom, min, step  float64
		wantRequired, wantReserve float64
	}{
		// 50,000 × 1.2 = 60,000, below the 100,000 minimum.
		{"minimum", 50_000, 0.2, 100_000, 0, 60_000, 100_000},
		// 150,000 × 1.2 = 180,000, above it.
		{"above minimum", 150_000, 0.2, 100_000, 0, 180_000, 180_000},
		// 180,000 ÷ 25,000 = 7.2 → 8 steps = 200,000.
		{"step", 150_000, 0.2, 100_000, 25_000, 180_000, 200_000},
		// 12,500 × 1.2 = 15,000.000000000002 in floats: exactly 15 steps.
		{"exact step", 12_500, 0.2, 10_000, 1_000, 15_000, 15_000},
		{"no traffic, no minimum", 0, 0.2, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, res := sizing.ReservedTPM(tc.p95, tc.headroom, tc.min, tc.step)
			if !near(req, tc.wantRequired) || res != tc.wantReserve {
				t.Errorf("ReservedTPM(%v, %v, %v, %v) = %v, %v; want %v, %v", tc.p95, tc.headroom, tc.min, tc.step, req, res, tc.wantRequired, tc.wantReserve)
			}
		})
	}
}

// reservedTiers prices "sonnet" at $3 in, $15 out, $3.75 cache writes per
// million, with Reserved prices made up for the arithmetic.
func reservedTiers(t *testing.T, reserved string) *tiering.Config {
	t.Helper()
	c, err := tiering.Load([]byte(`
tiers:
  - name: premium
    model_id: sonnet
    context_window: 200000
    max_output_tokens: 16384
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 3, output_per_mtok: 15, cache_write_per_mtok: 3.75}
provisioned:
  sonnet:
` + reserved))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dailyData is 31 days of one model: every minute base, except the hour
// (or block) from busyFrom for busyMinutes a day.
func dailyData(base, busy sizing.Minute, busyFrom, busyMinutes int) *sizing.Data {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	mins := make([]sizing.Minute, 31*1440)
	for i := range mins {
		if m := i % 1440; m >= busyFrom && m < busyFrom+busyMinutes {
			mins[i] = busy
		} else {
			mins[i] = base
		}
	}
	return &sizing.Data{Source: "emf", Start: start, End: start.Add(31 * 24 * time.Hour),
		Models: []*sizing.ModelSeries{{ModelID: "sonnet", Minutes: mins, Priced: true, ThrottlesKnown: true}}}
}

// priced sets a minute's on-demand cost at $3 / $15 / $3.75 per million.
func priced(m sizing.Minute) sizing.Minute {
	m.CostUSD = (m.InputTokens*3 + m.OutputTokens*15 + m.CacheWriteTokens*3.75) / 1e6
	return m
}

// TestReservedSizing is a hand-computed golden for the Reserved tier and
// the quota-request figures.
//
// 31 days = 44,640 minutes. Base minutes: 80,000 input + 20,000 cache-write
// (100,000 reserved-input tokens), 10,000 output, 10 requests. One busy
// hour a day (1,860 minutes, 4.2%): 180,000 + 20,000 (200,000), 30,000
// output, 20 requests. P95 = rank ceil(0.95 × 44,640) = 42,408 ≤ 42,780
// base minutes, so P95 input 100,000, output 10,000.
func TestReservedSizing(t *testing.T) {
	t.Parallel()
	base := priced(sizing.Minute{InputTokens: 80_000, CacheWriteTokens: 20_000, OutputTokens: 10_000, Requests: 10})
	busy := priced(sizing.Minute{InputTokens: 180_000, CacheWriteTokens: 20_000, OutputTokens: 30_000, Requests: 20})
	tiers := reservedTiers(t, `    reserved:
      input_per_1k_tpm_month: {one_month: 10, three_months: 8}
      output_per_1k_tpm_month: {one_month: 50, three_months: 40}
      step_tpm: 1000
    quota: {output_burndown: 5}
`)
	rep, err := sizing.Analyze(dailyData(base, busy, 9*60, 60), sizing.DefaultConfig(tiers))
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Models[0]
	rs := m.Reserved
	if rs == nil {
		t.Fatal("no Reserved sizing, want one (the model has a reserved block)")
	}
	// On-demand: base 0.24 + 0.075 + 0.15 = 0.465 a minute, busy 0.54 +
	// 0.075 + 0.45 = 1.065; 42,780 × 0.465 + 1,860 × 1.065 = 19,892.70 +
	// 1,980.90 = 21,873.60 over 744 h → × 730 ÷ 744 = 21,462 a month.
	// Reserve: input 100,000 × 1.2 = 120,000 (above the 100,000 minimum, a
	// multiple of 1,000); output 10,000 × 1.2 = 12,000.
	// Overflow: busy minutes only, (200,000 − 120,000) × 1,860 =
	// 148,800,000 input and (30,000 − 12,000) × 1,860 = 33,480,000 output;
	// at $3 and $15 a million 446.40 + 502.20 = 948.60 over 744 h →
	// 930.75 a month.
	// 1 month: 120 × $10 + 12 × $50 = 1,800 + 930.75 = 2,730.75.
	// 3 months: 120 × $8 + 12 × $40 = 1,440 + 930.75 = 2,370.75, saving
	// 21,462 − 2,370.75 = 19,091.25.
	// Utilisation: mean output (42,780 × 10,000 + 1,860 × 30,000) ÷ 44,640
	// = 10,833.3 of 12,000 = 0.90278 (input 104,166.7 ÷ 120,000 = 0.868).
	// Break-even (3 months) 2,370.75 ÷ 21,462 = 0.110462 of today's traffic.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"on-demand a month", m.OnDemand.PerMonthUSD, 21_462},
		{"input P95", rs.Input.P95, 100_000},
		{"input required", rs.Input.Required, 120_000},
		{"input reserved", rs.Input.TPM, 120_000},
		{"output reserved", rs.Output.TPM, 12_000},
		{"overflow input", rs.OverflowInputTokens, 148_800_000},
		{"overflow output", rs.OverflowOutputTokens, 33_480_000},
		{"overflow a month", rs.OverflowPerMonthUSD, 930.75},
		{"1 month reservation", rs.Terms[0].ReservationUSD, 1_800},
		{"1 month total", rs.Terms[0].MonthlyUSD, 2_730.75},
		{"3 months total", rs.Terms[1].MonthlyUSD, 2_370.75},
		{"3 months saves", rs.Terms[1].SavingsUSD, 19_091.25},
		{"utilisation", rs.Utilisation, 10_833.333333333334 / 12_000},
		{"break-even share", *rs.Terms[1].BreakEvenTrafficShare, 2_370.75 / 21_462},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if rs.Term != tiering.ReservedThreeMonths || !strings.Contains(rs.Summary, "reserve 120,000 input and 12,000 output tokens/min, 3-month Reserved: $2,370.75 a month") {
		t.Errorf("term %q, summary %q; want three_months recommended", rs.Term, rs.Summary)
	}

	// Quota figures: every minute is active, so steady = P50 = a base
	// minute. Raw TPM 80,000 + 20,000 + 10,000 = 110,000, peak 180,000 +
	// 20,000 + 30,000 = 230,000; with burndown 5: 100,000 + 50,000 =
	// 150,000 and 200,000 + 150,000 = 350,000. RPM 10 and 20. Requests
	// 42,780 × 10 + 1,860 × 20 = 465,000: input 3,757,200,000 ÷ 465,000 =
	// 8,080, cache writes 892,800,000 ÷ 465,000 = 1,920, output
	// 483,600,000 ÷ 465,000 = 1,040 a request.
	q := m.Quota
	if q == nil || q.SteadyQuotaTPM == nil {
		t.Fatalf("quota figures %+v, want them with burndown", q)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"steady TPM", q.SteadyTPM, 110_000}, {"peak TPM", q.PeakTPM, 230_000},
		{"steady quota TPM", *q.SteadyQuotaTPM, 150_000}, {"peak quota TPM", *q.PeakQuotaTPM, 350_000},
		{"steady RPM", q.SteadyRPM, 10}, {"peak RPM", q.PeakRPM, 20},
		{"avg input", q.AvgInputTokens, 8_080}, {"avg cache write", q.AvgCacheWriteTokens, 1_920}, {"avg output", q.AvgOutputTokens, 1_040},
		{"active minutes", float64(q.ActiveMinutes), 44_640},
	} {
		if !near(c.got, c.want) {
			t.Errorf("quota %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Burst: total tokens (input + output) peak at 210,000 against a P95 of
	// 90,000, 2.33×, under 3, and nothing was throttled.
	if m.Burst != nil {
		t.Errorf("burst advice %+v, want none (2.3× the P95, no throttles)", m.Burst)
	}
}

// TestReservedCannotPay: a term whose break-even needs the reservation
// more than 100% busy says so with the model units' wording, and is never
// recommended.
func TestReservedCannotPay(t *testing.T) {
	t.Parallel()
	base := priced(sizing.Minute{InputTokens: 80_000, CacheWriteTokens: 20_000, OutputTokens: 10_000, Requests: 10})
	busy := priced(sizing.Minute{InputTokens: 180_000, CacheWriteTokens: 20_000, OutputTokens: 30_000, Requests: 20})
	// 3 months: 120 × $200 + 12 × $40 = 24,480 + 930.75 = 25,410.75 a month;
	// share 25,410.75 ÷ 21,462 = 1.18399 × utilisation 0.90278 = 1.0689.
	// One month is not priced on the output side.
	tiers := reservedTiers(t, `    reserved:
      input_per_1k_tpm_month: {one_month: 10, three_months: 200}
      output_per_1k_tpm_month: {three_months: 40}
`)
	rep, err := sizing.Analyze(dailyData(base, busy, 9*60, 60), sizing.DefaultConfig(tiers))
	if err != nil {
		t.Fatal(err)
	}
	rs := rep.Models[0].Reserved
	if rs.Terms[0].Priced || !strings.Contains(rs.Terms[0].Missing, `provisioned["sonnet"].reserved.output_per_1k_tpm_month.one_month`) {
		t.Errorf("one_month = %+v, want not priced naming the output price", rs.Terms[0])
	}
	tc := rs.Terms[1]
	if !tc.CannotPay || !near(*tc.BreakEvenUtilisation, 25_410.75/21_462*(10_833.333333333334/12_000)) {
		t.Errorf("three_months = %+v, want cannot pay at 106.9%% utilisation", tc)
	}
	if rs.Term != "" || !strings.Contains(rs.Summary, "stay on on-demand") || !strings.Contains(rs.Summary, "cannot pay at this traffic") {
		t.Errorf("term %q, summary %q; want on-demand, cannot pay", rs.Term, rs.Summary)
	}
	if !strings.Contains(strings.Join(rs.Arithmetic, "\n"), "cannot pay at this traffic, the reservation would have to be more than 100% busy") {
		t.Errorf("arithmetic %q lacks the cannot-pay line", rs.Arithmetic)
	}
}

// TestNoReservedBlock: without provisioned[model].reserved nothing is sized
// for the Reserved tier.
func TestNoReservedBlock(t *testing.T) {
	t.Parallel()
	m := priced(sizing.Minute{InputTokens: 1000, OutputTokens: 100, Requests: 1})
	rep, err := sizing.Analyze(dailyData(m, m, 0, 0), sizing.DefaultConfig(reservedTiers(t, "    quota: {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Models[0].Reserved != nil {
		t.Errorf("Reserved = %+v, want nil", rep.Models[0].Reserved)
	}
	q := rep.Models[0].Quota
	if q.SteadyQuotaTPM != nil || !strings.Contains(strings.Join(q.Notes, "\n"), "TPM is raw tokens") {
		t.Errorf("quota %+v, want raw TPM only and a note saying so", q)
	}
}

// TestBurstyBatch: a 40-minute daily batch over 31 days. Its P95 minute is
// 0 (40 ÷ 1,440 = 2.8% of minutes have traffic), so the P95 rule alone
// would size 1 unit; the report must name the 1,240 throttled minutes and
// give both options with their costs.
func TestBurstyBatch(t *testing.T) {
	t.Parallel()
	batch := priced(sizing.Minute{InputTokens: 400_000, OutputTokens: 100_000, Requests: 50, Throttles: 2})
	tiers := reservedTiers(t, `    input_tokens_per_minute_per_unit: 50000
    output_tokens_per_minute_per_unit: 10000
    hourly_price_per_unit: {no_commitment: 30, six_months: 20}
    reserved:
      input_per_1k_tpm_month: {three_months: 8}
      output_per_1k_tpm_month: {three_months: 40}
    quota: {tokens_per_minute: 200000}
`)
	rep, err := sizing.Analyze(dailyData(sizing.Minute{}, batch, 2*60, 40), sizing.DefaultConfig(tiers))
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Models[0]
	b := m.Burst
	if b == nil {
		t.Fatal("no burst advice for a 40-minute daily batch")
	}
	// 40 × 31 = 1,240 throttled minutes. Busiest day: 40 × 500,000 =
	// 20,000,000 raw tokens (no burndown given); spread over 1,440 minutes
	// 13,888.9/min; at the 200,000/min quota 100 minutes.
	// Peak: input 400,000 × 1.2 = 480,000 ÷ 50,000 = 9.6 → 10 units;
	// output 100,000 × 1.2 = 120,000 ÷ 10,000 = 12 → 12 units; six months
	// $20 × 12 × 730 = 175,200. Reserved at the peak: 480,000 and 120,000
	// (above the minimums), 480 × $8 + 120 × $40 = 3,840 + 4,800 = 8,640.
	// On-demand: 40 × (0.4 × 3 + 0.1 × 15) = 108 a day × 31 = 3,348 over
	// 744 h → 3,285 a month.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"throttled minutes", float64(b.ThrottledMinutes), 1240},
		{"P95", b.P95TPM, 0}, {"peak", b.PeakTPM, 500_000},
		{"busiest day tokens", b.BusiestDayTokens, 20_000_000},
		{"spread TPM", b.SpreadTPM, 20_000_000.0 / 1440},
		{"batch minutes", b.BatchMinutes, 100},
		{"peak units", float64(b.PeakUnits), 12},
		{"peak units a month", b.PeakUnitsMonthlyUSD, 175_200},
		{"peak reserved input", b.PeakReservedInputTPM, 480_000},
		{"peak reserved output", b.PeakReservedOutputTPM, 120_000},
		{"peak reserved a month", b.PeakReservedMonthlyUSD, 8_640},
		{"spread a month", b.SpreadMonthlyUSD, 3_285},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if b.PeakUnitsTerm != tiering.TermSixMonths || b.PeakReservedTerm != tiering.ReservedThreeMonths || !b.QuotaConfigured {
		t.Errorf("terms %q, %q, quota configured %v; want six_months, three_months, true", b.PeakUnitsTerm, b.PeakReservedTerm, b.QuotaConfigured)
	}
	// The P95 rule's answer must carry the burst in its headline.
	for _, w := range []string{"1,240 of 44,640 minutes were throttled", "the P95 minute none"} {
		if !strings.Contains(m.Recommendation.Summary, w) {
			t.Errorf("recommendation %q lacks %q", m.Recommendation.Summary, w)
		}
	}
	if m.Sizing.Units != 1 {
		t.Errorf("P95 units %d, want 1 (P95 0): the burst advice is what corrects it", m.Sizing.Units)
	}
	advice := strings.Join(b.Advice, "\n")
	for _, w := range []string{"(a) Spread", "takes 100 minutes.", "$3,285.00 a month", "(b) Size for the busiest minute", "12 model units, 6-month commitment: $175,200.00 a month", "Reserved 480,000 input + 120,000 output tokens/min, 3-month Reserved: $8,640.00 a month"} {
		if !strings.Contains(advice, w) {
			t.Errorf("advice lacks %q:\n%s", w, advice)
		}
	}
}

// TestBurstRatio: a peak just over the ratio is bursty, one at it is not.
func TestBurstRatio(t *testing.T) {
	t.Parallel()
	tiers := reservedTiers(t, "    quota: {}\n")
	for _, tc := range []struct {
		peak   float64
		bursty bool
	}{{3000, false}, {3001, true}} {
		base := priced(sizing.Minute{InputTokens: 1000, Requests: 1})
		busy := priced(sizing.Minute{InputTokens: tc.peak, Requests: 1})
		rep, err := sizing.Analyze(dailyData(base, busy, 0, 10), sizing.DefaultConfig(tiers))
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Models[0].Burst != nil; got != tc.bursty {
			t.Errorf("peak %v over P95 1,000 (ratio 3): bursty %v, want %v", tc.peak, got, tc.bursty)
		}
	}
}

// TestNewSectionsRendered: the text and HTML reports show the burst
// advice, the Reserved tier and the quota figures.
func TestNewSectionsRendered(t *testing.T) {
	t.Parallel()
	batch := priced(sizing.Minute{InputTokens: 400_000, OutputTokens: 100_000, Requests: 50, Throttles: 2})
	tiers := reservedTiers(t, `    reserved:
      input_per_1k_tpm_month: {three_months: 8}
      output_per_1k_tpm_month: {three_months: 40}
    quota: {output_burndown: 5}
`)
	rep, err := sizing.Analyze(dailyData(sizing.Minute{}, batch, 2*60, 40), sizing.DefaultConfig(tiers))
	if err != nil {
		t.Fatal(err)
	}
	var text, html strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"BURST ADVICE: Bursty traffic", "RESERVED TIER", "not priced", "QUOTA REQUEST FIGURES", "TPM with output burndown ×5"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text report lacks %q", w)
		}
	}
	for _, w := range []string{"<h3>Bursty traffic</h3>", "<h3>Reserved tier", "<h3>Quota-increase figures", "TPM with output burndown ×5"} {
		if !strings.Contains(html.String(), w) {
			t.Errorf("HTML report lacks %q", w)
		}
	}
}
