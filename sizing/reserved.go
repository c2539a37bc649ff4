package sizing

import (
	"fmt"
	"math"
	"strings"

	"github.com/tierq/tierq/tiering"
)

// ReservedSizing is a model's Reserved-tier sizing: input and output
// tokens per minute reserved separately, each term's monthly cost with the
// overflow that the reservation does not carry, and the comparison with
// all on-demand.
type ReservedSizing struct {
	// Input counts input plus cache-write tokens, as the reservation does;
	// Output counts output tokens.
	Input  ReservedLimit `json:"input"`
	Output ReservedLimit `json:"output"`
	// Utilisation is mean use ÷ the reservation on the busier side.
	Utilisation float64 `json:"utilisation"`
	// OverflowInputTokens and OverflowOutputTokens are the tokens over the
	// reservation in the window's minutes, billed at on-demand (Standard)
	// prices; OverflowPerMonthUSD projects their cost to 730 h.
	OverflowInputTokens  float64            `json:"overflow_input_tokens"`
	OverflowOutputTokens float64            `json:"overflow_output_tokens"`
	OverflowUSD          float64            `json:"overflow_usd"`
	OverflowPerMonthUSD  float64            `json:"overflow_per_month_usd"`
	OverflowPriced       bool               `json:"overflow_priced"`
	Terms                []ReservedTermCost `json:"terms"`
	// Term is the cheapest priced term that can pay and costs less than
	// on-demand, if any; Summary says what to do in a sentence.
	Term       tiering.ReservedTerm `json:"term,omitempty"`
	Summary    string               `json:"summary"`
	Arithmetic []string             `json:"arithmetic"`
}

// ReservedLimit is one side of a reservation.
type ReservedLimit struct {
	P95 float64 `json:"p95_tokens_per_minute"`
	// Required = P95 × (1 + headroom).
	Required float64 `json:"required_tokens_per_minute"`
	Minimum  float64 `json:"minimum_tokens_per_minute"`
	Step     float64 `json:"step_tokens_per_minute,omitempty"`
	// TPM = max(Required, Minimum), rounded up to a multiple of Step.
	TPM     float64 `json:"reserved_tokens_per_minute"`
	MeanTPM float64 `json:"mean_tokens_per_minute"`
	Max     float64 `json:"max_tokens_per_minute"`
}

// ReservedTermCost is one Reserved term's monthly cost.
type ReservedTermCost struct {
	Term   tiering.ReservedTerm `json:"term"`
	Priced bool                 `json:"priced"`
	// Missing names the prices to supply when Priced is false.
	Missing     string  `json:"missing,omitempty"`
	InputPer1K  float64 `json:"input_per_1k_tpm_month,omitempty"`
	OutputPer1K float64 `json:"output_per_1k_tpm_month,omitempty"`
	// ReservationUSD = input TPM ÷ 1,000 × input price + output TPM ÷ 1,000
	// × output price; MonthlyUSD adds the overflow a month.
	ReservationUSD float64 `json:"reservation_usd,omitempty"`
	MonthlyUSD     float64 `json:"monthly_usd,omitempty"`
	// SavingsUSD, the break-even and CannotPay are as for TermCost.
	SavingsUSD            float64  `json:"monthly_savings_usd,omitempty"`
	BreakEvenTrafficShare *float64 `json:"break_even_traffic_share,omitempty"`
	BreakEvenUtilisation  *float64 `json:"break_even_utilisation,omitempty"`
	CannotPay             bool     `json:"cannot_pay,omitempty"`
}

// ReservedTPM returns the tokens per minute to reserve for a P95: the P95
// with headroom, at least the minimum, rounded up to a multiple of step
// when step is not zero.
func ReservedTPM(p95, headroom, minimum, step float64) (required, reserved float64) {
	required = p95 * (1 + headroom)
	reserved = max(required, minimum)
	if step > 0 {
		reserved = math.Ceil(reserved/step-unitSlack) * step
	}
	return required, reserved
}

func reservedTermText(t tiering.ReservedTerm) string {
	switch t {
	case tiering.ReservedOneMonth:
		return "1-month Reserved"
	case tiering.ReservedThreeMonths:
		return "3-month Reserved"
	}
	return string(t)
}

// sizeReserved sizes the Reserved tier for a model whose tiers file has a
// provisioned[model].reserved block.
func sizeReserved(m *ModelReport, c Config, hours float64) *ReservedSizing {
	id := m.ModelID
	p, ok := c.Tiers.Provisioned[id]
	if !ok || p.Reserved == nil {
		return nil
	}
	r := p.Reserved
	s := m.series.Minutes
	n := float64(len(s))
	in, out := make([]float64, len(s)), make([]float64, len(s))
	var inSum, outSum float64
	for i, x := range s {
		in[i], out[i] = x.QuotaInput(), x.OutputTokens
		inSum += in[i]
		outSum += out[i]
	}
	inP, outP := Summarize(in), Summarize(out)
	limit := func(p Percentiles, minimum, sum float64) ReservedLimit {
		l := ReservedLimit{P95: p.P95, Minimum: minimum, Step: r.StepTPM, MeanTPM: sum / n, Max: p.Max}
		l.Required, l.TPM = ReservedTPM(p.P95, c.Headroom, minimum, r.StepTPM)
		return l
	}
	rs := &ReservedSizing{Input: limit(inP, r.MinInput(), inSum), Output: limit(outP, r.MinOutput(), outSum)}
	for i := range s {
		rs.OverflowInputTokens += max(0, in[i]-rs.Input.TPM)
		rs.OverflowOutputTokens += max(0, out[i]-rs.Output.TPM)
	}
	for _, l := range []ReservedLimit{rs.Input, rs.Output} {
		if l.TPM > 0 {
			rs.Utilisation = max(rs.Utilisation, l.MeanTPM/l.TPM)
		}
	}
	// Overflow is billed at on-demand (Standard) prices; the input side's
	// overflow holds cache writes too, priced here at the input price.
	if prices, ok := c.Tiers.ModelPrices(id); ok {
		rs.OverflowPriced = true
		rs.OverflowUSD = prices.Cost(tiering.Usage{InputTokens: int(math.Round(rs.OverflowInputTokens)), OutputTokens: int(math.Round(rs.OverflowOutputTokens))}).TotalUSD
		rs.OverflowPerMonthUSD = ProjectMonthly(rs.OverflowUSD, hours)
	}

	side := func(name string, l ReservedLimit) string {
		step := ""
		if l.Step > 0 {
			step = fmt.Sprintf(", rounded up to a multiple of %s", fmtNum(l.Step))
		}
		return fmt.Sprintf("%s: P95 %s tokens/min × (1 + %s headroom) = %s; minimum %s%s → reserve %s tokens/min (mean %s, max %s)",
			name, fmtNum(l.P95), fmtPct(c.Headroom), fmtNum(l.Required), fmtNum(l.Minimum), step, fmtNum(l.TPM), fmtNum(l.MeanTPM), fmtNum(l.Max))
	}
	rs.Arithmetic = append(rs.Arithmetic,
		side("input (input + cache-write tokens)", rs.Input),
		side("output", rs.Output),
		fmt.Sprintf("utilisation today %s (mean ÷ reserved, busier side)", fmtPct(rs.Utilisation)))
	if rs.OverflowPriced {
		rs.Arithmetic = append(rs.Arithmetic, fmt.Sprintf("overflow: %s input + %s output tokens above the reservation at on-demand prices = %s over %s → %s a month",
			fmtDec(rs.OverflowInputTokens, 0), fmtDec(rs.OverflowOutputTokens, 0), fmtUSD(rs.OverflowUSD), formatDays(hours/24), fmtUSD(rs.OverflowPerMonthUSD)))
	}

	od := m.OnDemand
	var payable, cheapest *ReservedTermCost
	var missing []string
	for _, term := range tiering.ReservedTerms() {
		tc := ReservedTermCost{Term: term, InputPer1K: r.InputPer1KTPMMonth.Price(term), OutputPer1K: r.OutputPer1KTPMMonth.Price(term)}
		var need []string
		if tc.InputPer1K == 0 {
			need = append(need, fmt.Sprintf("provisioned[%q].reserved.input_per_1k_tpm_month.%s", id, term))
		}
		if tc.OutputPer1K == 0 {
			need = append(need, fmt.Sprintf("provisioned[%q].reserved.output_per_1k_tpm_month.%s", id, term))
		}
		if len(need) > 0 {
			tc.Missing = "not priced: supply " + strings.Join(need, " and ")
			missing = append(missing, string(term))
			rs.Terms = append(rs.Terms, tc)
			continue
		}
		tc.Priced = true
		tc.ReservationUSD = rs.Input.TPM/1000*tc.InputPer1K + rs.Output.TPM/1000*tc.OutputPer1K
		tc.MonthlyUSD = tc.ReservationUSD + rs.OverflowPerMonthUSD
		line := fmt.Sprintf("%s: %s ÷ 1,000 × %s + %s ÷ 1,000 × %s = %s reserved + %s overflow = %s a month",
			term, fmtNum(rs.Input.TPM), fmtUSD(tc.InputPer1K), fmtNum(rs.Output.TPM), fmtUSD(tc.OutputPer1K),
			fmtUSD(tc.ReservationUSD), fmtUSD(rs.OverflowPerMonthUSD), fmtUSD(tc.MonthlyUSD))
		if cmp, ok := compare(tc.MonthlyUSD, od, rs.Utilisation); ok && rs.OverflowPriced {
			tc.SavingsUSD, tc.BreakEvenTrafficShare, tc.BreakEvenUtilisation, tc.CannotPay = cmp.savings, &cmp.share, &cmp.atUtil, cmp.cannotPay
			line += cmp.text("the reservation")
		}
		rs.Arithmetic = append(rs.Arithmetic, line)
		rs.Terms = append(rs.Terms, tc)
		last := &rs.Terms[len(rs.Terms)-1]
		if cheapest == nil || last.MonthlyUSD < cheapest.MonthlyUSD {
			cheapest = last
		}
		if !last.CannotPay && (payable == nil || last.MonthlyUSD < payable.MonthlyUSD) {
			payable = last
		}
	}
	days := hours / 24
	switch {
	case !od.Priced || !rs.OverflowPriced:
		// Recorded costs can price the on-demand side while the tiers file
		// cannot price the overflow: then od.Missing is empty.
		why := od.Missing
		if why == "" {
			why = noPriceFor(id)
		}
		rs.Summary = "Reserved: cannot compare with on-demand: " + why + "."
	case cheapest == nil:
		rs.Summary = fmt.Sprintf("Reserved: sized at %s input and %s output tokens/min, but no term is priced: supply provisioned[%q].reserved prices for %s from your AWS account team.",
			fmtNum(rs.Input.TPM), fmtNum(rs.Output.TPM), id, strings.Join(missing, " and "))
	case days < MinDays:
		rs.Summary = fmt.Sprintf("Reserved: no commitment recommendation with only %s of data, fewer than %d.", formatDays(days), MinDays)
	case payable != nil && payable.MonthlyUSD < od.PerMonthUSD:
		rs.Term = payable.Term
		rs.Summary = fmt.Sprintf("Reserved: reserve %s input and %s output tokens/min, %s: %s a month (%s reserved + %s overflow) against %s on-demand saves %s (%s).",
			fmtNum(rs.Input.TPM), fmtNum(rs.Output.TPM), reservedTermText(payable.Term), fmtUSD(payable.MonthlyUSD),
			fmtUSD(payable.ReservationUSD), fmtUSD(rs.OverflowPerMonthUSD), fmtUSD(od.PerMonthUSD), fmtUSD(payable.SavingsUSD),
			fmtPct(payable.SavingsUSD/od.PerMonthUSD))
	default:
		rs.Summary = fmt.Sprintf("Reserved: stay on on-demand: the cheapest priced term (%s) costs %s a month against %s on-demand, a loss of %s.",
			reservedTermText(cheapest.Term), fmtUSD(cheapest.MonthlyUSD), fmtUSD(od.PerMonthUSD), fmtUSD(-cheapest.SavingsUSD))
		if cheapest.CannotPay {
			rs.Summary += fmt.Sprintf(" It %s: it breaks even only at %s utilisation of the reservation.", cannotPayText, fmtPct(*cheapest.BreakEvenUtilisation))
		}
	}
	if cheapest != nil && len(missing) > 0 {
		rs.Arithmetic = append(rs.Arithmetic, fmt.Sprintf("not priced: %s", strings.Join(missing, ", ")))
	}
	return rs
}
