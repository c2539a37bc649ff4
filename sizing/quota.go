package sizing

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tierq/tierq/tiering"
)

// QuotaFigures are what AWS's quota-increase form asks for, per model.
//
// Steady is the P50 of the active minutes (those with a request or a
// token): the typical minute while the workload runs. Quiet minutes are
// left out because they do not use the quota, and a batch that runs an
// hour a day would otherwise have a steady rate of zero. Peak is the
// busiest minute. TPM counts input, cache-write and output tokens (cache
// reads are released at settlement); QuotaTPM applies the output burndown
// (input + cache writes + output × burndown) when the tiers file gives it.
type QuotaFigures struct {
	// RequestsAre says what a request is: "answered calls", "finished jobs"
	// (records older than per-call attribution: an escalated job counts
	// once), both, or "invocations" (CloudWatch).
	RequestsAre   string  `json:"requests_are"`
	ActiveMinutes int     `json:"active_minutes"`
	SteadyTPM     float64 `json:"steady_tpm"`
	PeakTPM       float64 `json:"peak_tpm"`
	// OutputBurndown is provisioned[model].quota.output_burndown; 0 when
	// unknown, and then the quota TPM figures are absent.
	OutputBurndown float64  `json:"output_burndown,omitempty"`
	SteadyQuotaTPM *float64 `json:"steady_quota_tpm,omitempty"`
	PeakQuotaTPM   *float64 `json:"peak_quota_tpm,omitempty"`
	SteadyRPM      float64  `json:"steady_rpm"`
	PeakRPM        float64  `json:"peak_rpm"`
	// Averages per request over the window.
	AvgInputTokens      float64  `json:"avg_input_tokens_per_request"`
	AvgCacheWriteTokens float64  `json:"avg_cache_write_tokens_per_request"`
	AvgOutputTokens     float64  `json:"avg_output_tokens_per_request"`
	Notes               []string `json:"notes,omitempty"`
}

// quotaTokens are the tokens a minute uses against the TPM quota: raw with
// burndown 0 (unknown) or 1, else output tokens count burndown times.
func quotaTokens(x Minute, burndown float64) float64 {
	return x.QuotaInput() + x.OutputTokens*max(burndown, 1)
}

func quotaFigures(m *ModelReport, c Config) *QuotaFigures {
	p := c.Tiers.Provisioned[m.ModelID]
	b := p.Quota.OutputBurndown
	q := &QuotaFigures{OutputBurndown: b}
	s := m.series
	switch {
	case s.CallRecords && s.JobRecords:
		q.RequestsAre = "answered calls and finished jobs"
	case s.CallRecords:
		q.RequestsAre = "answered calls"
	case s.JobRecords:
		q.RequestsAre = "finished jobs"
	default:
		q.RequestsAre = "invocations"
	}
	var raw, burnt, rpm []float64
	var in, cw, out, reqs float64
	for _, x := range s.Minutes {
		in, cw, out, reqs = in+x.InputTokens, cw+x.CacheWriteTokens, out+x.OutputTokens, reqs+x.Requests
		if x.Requests == 0 && x.Tokens() == 0 && x.CacheWriteTokens == 0 {
			continue
		}
		raw = append(raw, quotaTokens(x, 1))
		burnt = append(burnt, quotaTokens(x, b))
		rpm = append(rpm, x.Requests)
	}
	q.ActiveMinutes = len(raw)
	rp, bp, qp := Summarize(raw), Summarize(burnt), Summarize(rpm)
	q.SteadyTPM, q.PeakTPM, q.SteadyRPM, q.PeakRPM = rp.P50, rp.Max, qp.P50, qp.Max
	if b > 0 {
		q.SteadyQuotaTPM, q.PeakQuotaTPM = &bp.P50, &bp.Max
	} else {
		q.Notes = append(q.Notes, fmt.Sprintf("TPM is raw tokens: no provisioned[%q].quota.output_burndown in the tiers file. Claude 4-class models burn each output token 5 times against the TPM quota, so their quota use is higher than shown", m.ModelID))
	}
	if reqs > 0 {
		q.AvgInputTokens, q.AvgCacheWriteTokens, q.AvgOutputTokens = in/reqs, cw/reqs, out/reqs
	}
	if s.JobRecords {
		q.Notes = append(q.Notes, "requests include finished jobs from records without per-call data: an escalated job's calls count as one request there, so RPM is understated and tokens per request overstated")
	}
	if m.ThrottledMinutes > 0 {
		q.Notes = append(q.Notes, fmt.Sprintf("%s minutes were throttled%s: the peak is what the quota served, demand was higher", fmtDec(float64(m.ThrottledMinutes), 0), throttleSource(s)))
	}
	return q
}

// throttleSource names where a model's throttles were counted, when that is
// CloudWatch: its InvocationThrottles metric counts SDK retries too.
func throttleSource(s *ModelSeries) string {
	if s.CallRecords || s.JobRecords {
		return ""
	}
	return " (CloudWatch InvocationThrottles, which counts SDK retries too)"
}

// BurstAdvice is the advice for bursty traffic, whose peak the P95 rule
// does not see: (a) spread the work through the queue and the limiter so
// on-demand carries it, or (b) size committed capacity for the peak. Both
// costs are shown.
type BurstAdvice struct {
	// Headline is the sentence added to the recommendation.
	Headline         string  `json:"headline"`
	PeakTPM          float64 `json:"peak_tokens_per_minute"`
	P95TPM           float64 `json:"p95_tokens_per_minute"`
	Ratio            float64 `json:"peak_to_p95,omitempty"`
	ThrottledMinutes int     `json:"throttled_minutes"`
	// (a) Spread: the busiest UTC day's quota tokens (input + cache writes
	// + output × burndown, raw when the burndown is unknown) spread over
	// the day need SpreadTPM; at QuotaTPM (the configured quota, else the
	// busiest minute served) the day's work takes BatchMinutes.
	BusiestDay       string  `json:"busiest_day"`
	BusiestDayTokens float64 `json:"busiest_day_quota_tokens"`
	SpreadTPM        float64 `json:"spread_tokens_per_minute"`
	QuotaTPM         float64 `json:"quota_tokens_per_minute"`
	QuotaConfigured  bool    `json:"quota_configured"`
	BatchMinutes     float64 `json:"batch_minutes_at_quota"`
	SpreadMonthlyUSD float64 `json:"spread_monthly_usd"`
	// (b) Peak: model units and Reserved TPM at the busiest minute with
	// headroom, at the cheapest priced term; zero when not configured.
	PeakUnits              int                  `json:"peak_units,omitempty"`
	PeakUnitsTerm          tiering.Term         `json:"peak_units_term,omitempty"`
	PeakUnitsMonthlyUSD    float64              `json:"peak_units_monthly_usd,omitempty"`
	PeakReservedInputTPM   float64              `json:"peak_reserved_input_tpm,omitempty"`
	PeakReservedOutputTPM  float64              `json:"peak_reserved_output_tpm,omitempty"`
	PeakReservedTerm       tiering.ReservedTerm `json:"peak_reserved_term,omitempty"`
	PeakReservedMonthlyUSD float64              `json:"peak_reserved_monthly_usd,omitempty"`
	// Advice is the two options in sentences, with their arithmetic.
	Advice []string `json:"advice"`
}

// burstAdvice returns the advice when the model's traffic is bursty: its
// busiest minute above BurstRatio × the P95 minute (total tokens), or any
// throttled minute. Otherwise nil.
func burstAdvice(d *Data, m *ModelReport, c Config) *BurstAdvice {
	t := m.TotalTPM
	if t.Max == 0 {
		return nil
	}
	spiky := t.Max > c.BurstRatio*t.P95
	if !spiky && m.ThrottledMinutes == 0 {
		return nil
	}
	p := c.Tiers.Provisioned[m.ModelID]
	burndown := p.Quota.OutputBurndown
	a := &BurstAdvice{PeakTPM: t.Max, P95TPM: t.P95, ThrottledMinutes: m.ThrottledMinutes}
	if t.P95 > 0 {
		a.Ratio = t.Max / t.P95
	}
	var why []string
	switch {
	case spiky && t.P95 == 0:
		why = append(why, fmt.Sprintf("the busiest minute has %s tokens but the P95 minute none (traffic in fewer than 5%% of minutes)", fmtNum(t.Max)))
	case spiky:
		why = append(why, fmt.Sprintf("the busiest minute (%s tokens) is %s× the P95 minute (%s)", fmtNum(t.Max), fmtDec(a.Ratio, 1), fmtNum(t.P95)))
	}
	if m.ThrottledMinutes > 0 {
		why = append(why, fmt.Sprintf("%s of %s minutes were throttled%s", fmtDec(float64(m.ThrottledMinutes), 0), fmtDec(float64(len(m.series.Minutes)), 0), throttleSource(m.series)))
	}
	a.Headline = fmt.Sprintf("Bursty traffic: %s. Sizing at the P95 does not carry the bursts: see the burst advice (spread the work, or size for the peak) before buying anything.", joinAnd(why))

	// (a) Spread the busiest day.
	days := map[string]float64{}
	var peakQuota float64
	for i, x := range m.series.Minutes {
		q := quotaTokens(x, burndown)
		days[d.Start.Add(time.Duration(i)*time.Minute).Format(time.DateOnly)] += q
		peakQuota = max(peakQuota, q)
	}
	for _, day := range slices.Sorted(maps.Keys(days)) {
		if days[day] > a.BusiestDayTokens {
			a.BusiestDay, a.BusiestDayTokens = day, days[day]
		}
	}
	a.SpreadTPM = a.BusiestDayTokens / 1440
	a.QuotaTPM, a.QuotaConfigured = p.Quota.TokensPerMinute, p.Quota.TokensPerMinute > 0
	if !a.QuotaConfigured {
		a.QuotaTPM = peakQuota
	}
	if a.QuotaTPM > 0 {
		a.BatchMinutes = a.BusiestDayTokens / a.QuotaTPM
	}
	a.SpreadMonthlyUSD = m.OnDemand.PerMonthUSD
	tokensAre := "raw tokens (input + cache writes + output; no output burndown configured)"
	if burndown > 0 {
		tokensAre = fmt.Sprintf("quota tokens (input + cache writes + output × %s)", fmtDec(burndown, 2))
	}
	quota := fmt.Sprintf("the configured quota of %s tokens/min", fmtNum(a.QuotaTPM))
	if !a.QuotaConfigured {
		quota = fmt.Sprintf("the busiest minute served, %s tokens/min (no provisioned[%q].quota.tokens_per_minute in the tiers file; the real quota may be higher)", fmtNum(a.QuotaTPM), m.ModelID)
	}
	took := fmtDec(a.BatchMinutes, 0) + " minutes"
	if a.BatchMinutes >= 120 {
		took += " (" + formatDays(a.BatchMinutes/1440) + ")"
	}
	spread := fmt.Sprintf("(a) Spread the work through the queue and the limiter: the busiest day (%s) used %s %s; spread over 24 hours that is %s tokens/min of on-demand quota. At %s the day's work takes %s.",
		a.BusiestDay, fmtDec(a.BusiestDayTokens, 0), tokensAre, fmtNum(a.SpreadTPM), quota, took)
	if a.BatchMinutes > 1440 {
		spread += " That is more than a day: request a quota increase (see the quota figures) or the backlog grows."
	}
	if m.OnDemand.Priced {
		spread += fmt.Sprintf(" Cost: on-demand as today, %s a month.", fmtUSD(a.SpreadMonthlyUSD))
	}
	a.Advice = append(a.Advice, spread)

	// (b) Size for the peak.
	peak := fmt.Sprintf("(b) Size for the busiest minute plus %s headroom", fmtPct(c.Headroom))
	var opts []string
	if u, term, monthly, ok := peakUnits(m, p, c.Headroom); ok {
		a.PeakUnits, a.PeakUnitsTerm, a.PeakUnitsMonthlyUSD = u, term, monthly
		opts = append(opts, fmt.Sprintf("%d model unit%s, %s: %s a month", u, plural(u), termText(term), fmtUSD(monthly)))
	} else if u > 0 {
		a.PeakUnits = u
		opts = append(opts, fmt.Sprintf("%d model unit%s (no term priced)", u, plural(u)))
	}
	if r := p.Reserved; r != nil {
		var inMax, outMax float64
		for _, x := range m.series.Minutes {
			inMax, outMax = max(inMax, x.QuotaInput()), max(outMax, x.OutputTokens)
		}
		_, a.PeakReservedInputTPM = ReservedTPM(inMax, c.Headroom, r.MinInput(), r.StepTPM)
		_, a.PeakReservedOutputTPM = ReservedTPM(outMax, c.Headroom, r.MinOutput(), r.StepTPM)
		var best float64
		for _, term := range tiering.ReservedTerms() {
			pi, po := r.InputPer1KTPMMonth.Price(term), r.OutputPer1KTPMMonth.Price(term)
			if pi == 0 || po == 0 {
				continue
			}
			if cost := a.PeakReservedInputTPM/1000*pi + a.PeakReservedOutputTPM/1000*po; a.PeakReservedTerm == "" || cost < best {
				a.PeakReservedTerm, best = term, cost
			}
		}
		a.PeakReservedMonthlyUSD = best
		s := fmt.Sprintf("Reserved %s input + %s output tokens/min", fmtNum(a.PeakReservedInputTPM), fmtNum(a.PeakReservedOutputTPM))
		if a.PeakReservedTerm != "" {
			s += fmt.Sprintf(", %s: %s a month", reservedTermText(a.PeakReservedTerm), fmtUSD(best))
		} else {
			s += " (no term priced)"
		}
		opts = append(opts, s)
	}
	if len(opts) == 0 {
		peak += fmt.Sprintf(": not configured; supply provisioned[%q] throughput and prices (model units) or a reserved block", m.ModelID)
	} else {
		peak += ": " + joinOr(opts)
		if m.OnDemand.Priced {
			peak += fmt.Sprintf(", against %s a month on-demand", fmtUSD(m.OnDemand.PerMonthUSD))
		}
	}
	a.Advice = append(a.Advice, peak+".")
	return a
}

// peakUnits sizes model units for the busiest minute and prices them at
// the cheapest priced term. ok is false when no term is priced; units is 0
// when no per-unit figure is given.
func peakUnits(m *ModelReport, p tiering.Provisioned, headroom float64) (units int, term tiering.Term, monthly float64, ok bool) {
	for _, dim := range []struct {
		perUnit, max float64
	}{
		{p.InputTokensPerMinutePerUnit, m.InputTPM.Max},
		{p.OutputTokensPerMinutePerUnit, m.OutputTPM.Max},
		{p.TokensPerMinutePerUnit, m.TotalTPM.Max},
	} {
		if dim.perUnit > 0 {
			_, u := Units(dim.max, headroom, dim.perUnit)
			units = max(units, u)
		}
	}
	if units == 0 {
		return 0, "", 0, false
	}
	for _, t := range tiering.Terms() {
		if h := p.HourlyPricePerUnit.Price(t); h > 0 {
			if cost := MonthlyCost(h, units); !ok || cost < monthly {
				term, monthly, ok = t, cost, true
			}
		}
	}
	return units, term, monthly, ok
}

func joinAnd(parts []string) string { return joinList(parts, "and") }
func joinOr(parts []string) string  { return joinList(parts, "or") }

func joinList(parts []string, conj string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	out := ""
	for i, p := range parts[:len(parts)-1] {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out + " " + conj + " " + parts[len(parts)-1]
}
