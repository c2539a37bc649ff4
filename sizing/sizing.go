package sizing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tierq/tierq/tiering"
)

// DefaultHeadroom is the share added to the P95 peak before converting to
// model units: 20%, the operators' rule.
const DefaultHeadroom = 0.2

// Defaults of the data checks (Config.EdgeGap, IsolatedRecords,
// BurstRatio).
const (
	// DefaultEdgeGap: a week without records is more than a weekend or a
	// holiday, so data beyond it at an edge of the window is reported.
	DefaultEdgeGap = 7 * 24 * time.Hour
	// DefaultIsolatedRecords: up to 10 records beyond such a gap are
	// "isolated" (a stray test, a clock error), not a workload.
	DefaultIsolatedRecords = 10
	// DefaultBurstRatio: a peak minute more than 3 times the P95 is a
	// burst the P95 sizing rule does not see.
	DefaultBurstRatio = 3.0
)

// Config configures an analysis. Use DefaultConfig and change what differs.
type Config struct {
	// Tiers holds the provisioned-throughput figures (provisioned:) and
	// names the tiers using each model. Required.
	Tiers *tiering.Config
	// Headroom is added to the P95 peak: required = P95 × (1 + Headroom).
	// Default 0.2; 0 is allowed and means none.
	Headroom float64
	// TierTable and TenantTable include the cost tables. Default true.
	TierTable   bool
	TenantTable bool
	// EdgeGap is how long a stretch without records must be to be "long":
	// when one separates the first (or last) records from the rest and
	// those records are fewer than the rest, the report names them and the
	// --start (or --end) that leaves them out. Default DefaultEdgeGap.
	EdgeGap time.Duration
	// IsolatedRecords is the most records beyond such a gap that are called
	// isolated outliers rather than an early (or late) stretch of the
	// workload. Default DefaultIsolatedRecords.
	IsolatedRecords int
	// BurstRatio: traffic is bursty, and gets its own advice, when the
	// busiest minute's tokens exceed BurstRatio × the P95 minute's, or when
	// any minute was throttled. Default DefaultBurstRatio.
	BurstRatio float64
	// Now stamps the report. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults for a tiers configuration.
func DefaultConfig(tiers *tiering.Config) Config {
	return Config{
		Tiers: tiers, Headroom: DefaultHeadroom, TierTable: true, TenantTable: true, Now: time.Now,
		EdgeGap: DefaultEdgeGap, IsolatedRecords: DefaultIsolatedRecords, BurstRatio: DefaultBurstRatio,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Tiers == nil {
		errs = append(errs, errors.New("tiers: required (the tiers file with prices and provisioned figures)"))
	}
	if !(c.Headroom >= 0 && c.Headroom <= 10) {
		errs = append(errs, fmt.Errorf("headroom: must be between 0 and 10 (got %v); 0.2 means 20%%", c.Headroom))
	}
	if c.EdgeGap < time.Hour {
		errs = append(errs, fmt.Errorf("edge gap: must be at least 1h (got %v); default %v", c.EdgeGap, DefaultEdgeGap))
	}
	if c.IsolatedRecords < 0 {
		errs = append(errs, fmt.Errorf("isolated records: must be >= 0 (got %d); default %d", c.IsolatedRecords, DefaultIsolatedRecords))
	}
	if !(c.BurstRatio >= 1) || math.IsInf(c.BurstRatio, 0) {
		errs = append(errs, fmt.Errorf("burst ratio: must be a finite number >= 1 (got %v); default %v", c.BurstRatio, DefaultBurstRatio))
	}
	return errors.Join(errs...)
}

// Build reads a source and analyses what it read.
func Build(ctx context.Context, src Source, c Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid sizing config:\n%w", err)
	}
	d, err := src.Series(ctx)
	if err != nil {
		return nil, err
	}
	return Analyze(d, c)
}

// Verdicts of a Recommendation.
const (
	// VerdictProvisioned: a priced term costs less than on-demand.
	VerdictProvisioned = "provisioned"
	// VerdictOnDemand: no priced term costs less than on-demand.
	VerdictOnDemand = "on-demand"
	// VerdictInsufficientData: fewer than MinDays of data; no commitment
	// is recommended.
	VerdictInsufficientData = "insufficient-data"
	// VerdictCannotSize: no tokens-per-minute-per-unit figure.
	VerdictCannotSize = "cannot-size"
	// VerdictCannotCompare: no on-demand price, or no term priced.
	VerdictCannotCompare = "cannot-compare"
	// VerdictNoTraffic: the model used no tokens in the window.
	VerdictNoTraffic = "no-traffic"
)

// Dimensions of a capacity Limit.
const (
	DimInput  = "input"
	DimOutput = "output"
	DimTotal  = "total"
)

// Report is the analysis of one workload: what goes into the terminal table,
// the JSON and the HTML report.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	Source      string    `json:"source"`
	Inputs      []string  `json:"inputs"`
	CostBasis   string    `json:"cost_basis"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Days        float64   `json:"days"`
	Headroom    float64   `json:"headroom"`
	// EdgeGapHours, IsolatedRecords and BurstRatio are the data checks'
	// settings (Config).
	EdgeGapHours    float64 `json:"edge_gap_hours"`
	IsolatedRecords int     `json:"isolated_records"`
	BurstRatio      float64 `json:"burst_ratio"`
	// HoursPerMonth and MinDays are the constants used, for automation that
	// redoes the arithmetic.
	HoursPerMonth float64       `json:"hours_per_month"`
	MinDays       float64       `json:"min_days"`
	Models        []ModelReport `json:"models"`
	// Tiers and Tenants are cost tables, largest cost first; nil when the
	// source has no per-job records or the table was not asked for.
	Tiers   []CostRow `json:"tiers,omitempty"`
	Tenants []CostRow `json:"tenants,omitempty"`
	// Warnings apply to the whole report (short data, skipped input).
	Warnings []string `json:"warnings,omitempty"`

	data *Data // the minutes, for charts
}

// ModelReport is one model's analysis, sizing and recommendation.
type ModelReport struct {
	ModelID string   `json:"model_id"`
	Tiers   []string `json:"tiers,omitempty"`
	// Requests, InputTokens, OutputTokens are totals over the window.
	Requests     float64 `json:"requests"`
	InputTokens  float64 `json:"input_tokens"`
	OutputTokens float64 `json:"output_tokens"`
	// Per-minute percentiles over every minute of the window.
	InputTPM  Percentiles `json:"input_tokens_per_minute"`
	OutputTPM Percentiles `json:"output_tokens_per_minute"`
	TotalTPM  Percentiles `json:"total_tokens_per_minute"`
	// EstimatedTPM is CloudWatch's EstimatedTPMQuotaUsage, where present:
	// quota consumption, which counts cache writes and burndown multipliers.
	EstimatedTPM *Percentiles `json:"estimated_tpm_quota_usage,omitempty"`
	PeakHours    []PeakHour   `json:"peak_hours"`
	// ThrottledMinutes counts minutes with at least one throttle; when
	// ThrottlesKnown is false the source does not record throttles.
	ThrottledMinutes int         `json:"throttled_minutes"`
	ThrottlesKnown   bool        `json:"throttles_known"`
	CoarseMinutes    int         `json:"coarse_minutes,omitempty"`
	OnDemand         OnDemand    `json:"on_demand"`
	Daily            []DailyCost `json:"daily"`
	// Sizing is nil when the model cannot be sized (Recommendation says why).
	Sizing *Sizing `json:"sizing,omitempty"`
	// Reserved is the Reserved-tier sizing; nil when the tiers file has no
	// provisioned[model].reserved block or the model had no traffic.
	Reserved *ReservedSizing `json:"reserved,omitempty"`
	// Quota are the figures AWS's quota-increase form asks for.
	Quota *QuotaFigures `json:"quota_request,omitempty"`
	// Burst is the advice for bursty traffic; nil when it is not bursty.
	Burst          *BurstAdvice   `json:"burst,omitempty"`
	Recommendation Recommendation `json:"recommendation"`
	// Notes are the guard rails and caveats for this model.
	Notes []string `json:"notes,omitempty"`

	series *ModelSeries
}

// PeakHour is an hour of the day (UTC) by mean tokens per minute.
type PeakHour struct {
	Hour    int     `json:"hour_utc"`
	MeanTPM float64 `json:"mean_tokens_per_minute"`
}

// OnDemand is the model's on-demand cost over the window and projected.
type OnDemand struct {
	Priced bool `json:"priced"`
	// Missing names the price to supply when Priced is false.
	Missing   string  `json:"missing,omitempty"`
	TotalUSD  float64 `json:"total_usd"`
	PerDayUSD float64 `json:"per_day_usd"`
	// PerMonthUSD is TotalUSD projected to 730 hours.
	PerMonthUSD float64 `json:"per_month_usd"`
}

// DailyCost is one UTC day's on-demand cost; Hours < 24 on partial days at
// the ends of the window.
type DailyCost struct {
	Day         string  `json:"day"`
	Hours       float64 `json:"hours"`
	OnDemandUSD float64 `json:"on_demand_usd"`
}

// Sizing is how many model units the workload needs and what they cost.
type Sizing struct {
	Limits []Limit `json:"limits"`
	// Units is the most any limit needs; Binding names the dimensions that
	// need that many.
	Units   int      `json:"units"`
	Binding []string `json:"binding"`
	// Utilisation is today's mean tokens per minute ÷ the capacity bought,
	// on the busiest dimension.
	Utilisation float64    `json:"utilisation"`
	Terms       []TermCost `json:"terms"`
}

// Limit is one capacity dimension: a per-unit figure the user gave and the
// units the P95 peak needs on it.
type Limit struct {
	Dimension string  `json:"dimension"`
	P95       float64 `json:"p95_tokens_per_minute"`
	// Required = P95 × (1 + headroom).
	Required float64 `json:"required_tokens_per_minute"`
	PerUnit  float64 `json:"tokens_per_minute_per_unit"`
	// Units = max(1, ceiling(Required ÷ PerUnit)).
	Units   int     `json:"units"`
	MeanTPM float64 `json:"mean_tokens_per_minute"`
}

// TermCost is one commitment term's cost for the sized units.
type TermCost struct {
	Term   tiering.Term `json:"term"`
	Priced bool         `json:"priced"`
	// Missing names the price to supply when Priced is false.
	Missing       string  `json:"missing,omitempty"`
	HourlyPerUnit float64 `json:"hourly_price_per_unit,omitempty"`
	// MonthlyUSD = HourlyPerUnit × units × 730.
	MonthlyUSD float64 `json:"monthly_usd,omitempty"`
	// SavingsUSD = on-demand monthly − MonthlyUSD; negative costs more.
	SavingsUSD float64 `json:"monthly_savings_usd,omitempty"`
	// BreakEvenTrafficShare = MonthlyUSD ÷ on-demand monthly: the share of
	// today's traffic at which the term costs the same as on-demand.
	// BreakEvenUtilisation is the units' utilisation at that traffic. Both
	// are absent when there is no on-demand cost to compare with.
	BreakEvenTrafficShare *float64 `json:"break_even_traffic_share,omitempty"`
	BreakEvenUtilisation  *float64 `json:"break_even_utilisation,omitempty"`
	// CannotPay is true when BreakEvenUtilisation is above 100%: the units
	// would have to serve more than they can, so the term cannot pay at
	// this traffic and is never recommended.
	CannotPay bool `json:"cannot_pay,omitempty"`
}

// cannotPayText is how every format says a term's break-even utilisation
// is above 100%.
const cannotPayText = "cannot pay at this traffic"

// Recommendation is the plain answer for a model, with its arithmetic.
type Recommendation struct {
	Verdict string       `json:"verdict"`
	Term    tiering.Term `json:"term,omitempty"`
	Summary string       `json:"summary"`
	// Arithmetic shows each step, one per line.
	Arithmetic []string `json:"arithmetic,omitempty"`
}

// Analyze computes the report from a source's data.
func Analyze(d *Data, c Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid sizing config:\n%w", err)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	hours := d.End.Sub(d.Start).Hours()
	r := &Report{
		GeneratedAt: c.Now().UTC(), Source: d.Source, Inputs: d.Inputs, CostBasis: d.CostBasis,
		Start: d.Start, End: d.End, Days: hours / 24, Headroom: c.Headroom,
		HoursPerMonth: HoursPerMonth, MinDays: MinDays, data: d,
		EdgeGapHours: c.EdgeGap.Hours(), IsolatedRecords: c.IsolatedRecords, BurstRatio: c.BurstRatio,
	}
	r.Warnings = append(r.Warnings, d.Warnings...)
	r.Warnings = append(r.Warnings, edgeWarnings(d, c.EdgeGap, c.IsolatedRecords)...)
	switch {
	case d.Minutes() == 0:
		r.Warnings = append(r.Warnings, "no usage found: nothing to size")
	case r.Days < MinDays:
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"less than %d days of data (%s): costs are projections from a short window and no commitment is recommended",
			MinDays, formatDays(r.Days)))
	}
	for _, s := range d.Models {
		r.Models = append(r.Models, analyzeModel(d, s, c, hours))
	}
	// Costliest first: that is where the decision matters. Unpriced models
	// go last; ties keep the sources' model-ID order.
	slices.SortStableFunc(r.Models, func(a, b ModelReport) int {
		if a.OnDemand.Priced != b.OnDemand.Priced {
			if a.OnDemand.Priced {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.OnDemand.TotalUSD, a.OnDemand.TotalUSD)
	})
	if c.TierTable {
		r.Tiers = costTable(d.Totals, func(t JobTotals) string { return orNone(t.Tier) })
	}
	if c.TenantTable {
		r.Tenants = costTable(d.Totals, func(t JobTotals) string { return orNone(t.Tenant) })
	}
	return r, nil
}

func analyzeModel(d *Data, s *ModelSeries, c Config, hours float64) ModelReport {
	m := ModelReport{ModelID: s.ModelID, ThrottlesKnown: s.ThrottlesKnown, CoarseMinutes: s.CoarseMinutes, series: s}
	for _, t := range c.Tiers.Tiers {
		if t.ModelID == s.ModelID {
			m.Tiers = append(m.Tiers, t.Name)
		}
	}
	n := len(s.Minutes)
	in, out, tot, est := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	var cost float64
	var hourSum [24]float64
	var hourMinutes [24]int
	for i, x := range s.Minutes {
		in[i], out[i], tot[i], est[i] = x.InputTokens, x.OutputTokens, x.Tokens(), x.EstimatedTPM
		m.Requests += x.Requests
		m.InputTokens += x.InputTokens
		m.OutputTokens += x.OutputTokens
		cost += x.CostUSD
		if x.Throttles > 0 {
			m.ThrottledMinutes++
		}
		h := d.Start.Add(time.Duration(i) * time.Minute).Hour()
		hourSum[h] += x.Tokens()
		hourMinutes[h]++
	}
	m.InputTPM, m.OutputTPM, m.TotalTPM = Summarize(in), Summarize(out), Summarize(tot)
	if s.EstimatedTPMKnown {
		p := Summarize(est)
		m.EstimatedTPM = &p
	}
	m.PeakHours = peakHours(hourSum, hourMinutes)
	m.Daily = daily(d, s)

	m.OnDemand = OnDemand{Priced: s.Priced, TotalUSD: cost}
	if s.Priced && hours > 0 {
		m.OnDemand.PerDayUSD = cost / (hours / 24)
		m.OnDemand.PerMonthUSD = ProjectMonthly(cost, hours)
	}
	if !s.Priced {
		m.OnDemand.Missing = noPriceFor(s.ModelID)
	}

	if s.ThrottlesKnown && m.ThrottledMinutes == 0 && m.InputTokens+m.OutputTokens > 0 {
		m.Notes = append(m.Notes, "no throttled minutes: on-demand is keeping up, so provisioned throughput may not be needed for capacity")
	}
	if !s.ThrottlesKnown {
		m.Notes = append(m.Notes, "throttles unknown: result objects do not record them; use --emf or --cloudwatch for the throttling signal")
	}
	if s.CoarseMinutes > 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("%s of the window came from 5-minute or hourly CloudWatch data (1-minute data is kept 15 days), spread evenly: peaks shorter than the period are understated",
			formatDays(float64(s.CoarseMinutes)/1440)))
	}

	m.Sizing, m.Recommendation = size(&m, c, hours)
	if m.InputTokens+m.OutputTokens > 0 {
		m.Reserved = sizeReserved(&m, c, hours)
		m.Quota = quotaFigures(&m, c)
	}
	m.Burst = burstAdvice(d, &m, c)
	if m.Burst != nil && m.Recommendation.Verdict != VerdictNoTraffic {
		// Advice sized at the P95 must carry the burst in its headline.
		m.Recommendation.Summary += " " + m.Burst.Headline
	}
	return m
}

// size computes the units, the terms' costs and the recommendation.
func size(m *ModelReport, c Config, hours float64) (*Sizing, Recommendation) {
	id := m.ModelID
	days := hours / 24
	if m.InputTokens+m.OutputTokens == 0 {
		return nil, Recommendation{Verdict: VerdictNoTraffic, Summary: "No tokens in the window: nothing to size."}
	}
	p, ok := c.Tiers.Provisioned[id]
	if !ok || p.InputTokensPerMinutePerUnit == 0 && p.OutputTokensPerMinutePerUnit == 0 && p.TokensPerMinutePerUnit == 0 {
		what := fmt.Sprintf("provisioned[%q] with input_tokens_per_minute_per_unit and output_tokens_per_minute_per_unit (or tokens_per_minute_per_unit for both together)", id)
		return nil, Recommendation{
			Verdict: VerdictCannotSize,
			Summary: fmt.Sprintf("Cannot size: supply %s in the tiers file. AWS does not publish tokens per minute per model unit; ask your AWS account team or measure a no-commitment unit.", what),
		}
	}
	minutes := float64(len(m.series.Minutes))
	var limits []Limit
	addLimit := func(dim string, perUnit float64, pct Percentiles, total float64) {
		if perUnit <= 0 {
			return
		}
		l := Limit{Dimension: dim, P95: pct.P95, PerUnit: perUnit, MeanTPM: total / minutes}
		l.Required, l.Units = Units(pct.P95, c.Headroom, perUnit)
		limits = append(limits, l)
	}
	addLimit(DimInput, p.InputTokensPerMinutePerUnit, m.InputTPM, m.InputTokens)
	addLimit(DimOutput, p.OutputTokensPerMinutePerUnit, m.OutputTPM, m.OutputTokens)
	addLimit(DimTotal, p.TokensPerMinutePerUnit, m.TotalTPM, m.InputTokens+m.OutputTokens)
	if p.InputTokensPerMinutePerUnit > 0 && p.OutputTokensPerMinutePerUnit == 0 && p.TokensPerMinutePerUnit == 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("output capacity not checked: supply provisioned[%q].output_tokens_per_minute_per_unit", id))
	}
	if p.OutputTokensPerMinutePerUnit > 0 && p.InputTokensPerMinutePerUnit == 0 && p.TokensPerMinutePerUnit == 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("input capacity not checked: supply provisioned[%q].input_tokens_per_minute_per_unit", id))
	}

	sz := &Sizing{Limits: limits}
	for _, l := range limits {
		sz.Units = max(sz.Units, l.Units)
	}
	for _, l := range limits {
		if l.Units == sz.Units {
			sz.Binding = append(sz.Binding, l.Dimension)
		}
		sz.Utilisation = max(sz.Utilisation, l.MeanTPM/(float64(sz.Units)*l.PerUnit))
	}

	var arith []string
	for _, l := range limits {
		arith = append(arith, fmt.Sprintf("%s: P95 %s tokens/min × (1 + %s headroom) = %s required ÷ %s per unit = %s → %d unit%s",
			l.Dimension, fmtNum(l.P95), fmtPct(c.Headroom), fmtNum(l.Required), fmtNum(l.PerUnit),
			strconvFloat(l.Required/l.PerUnit), l.Units, plural(l.Units)))
	}
	arith = append(arith, fmt.Sprintf("units = %d (binding: %s); utilisation today %s (mean tokens/min ÷ capacity bought)",
		sz.Units, strings.Join(sz.Binding, " and "), fmtPct(sz.Utilisation)))

	od := m.OnDemand
	if od.Priced {
		arith = append(arith, fmt.Sprintf("on-demand: %s over %s → × %d h ÷ %s h = %s a month",
			fmtUSD(od.TotalUSD), formatDays(days), HoursPerMonth, strconvFloat(hours), fmtUSD(od.PerMonthUSD)))
	}
	var cheapest *TermCost
	var missing []string
	for _, term := range tiering.Terms() {
		tc := TermCost{Term: term, HourlyPerUnit: p.HourlyPricePerUnit.Price(term)}
		if tc.HourlyPerUnit == 0 {
			tc.Missing = fmt.Sprintf("not priced: supply provisioned[%q].hourly_price_per_unit.%s", id, term)
			missing = append(missing, string(term))
			sz.Terms = append(sz.Terms, tc)
			continue
		}
		tc.Priced = true
		tc.MonthlyUSD = MonthlyCost(tc.HourlyPerUnit, sz.Units)
		line := fmt.Sprintf("%s: %s/unit-hour × %d unit%s × %d h = %s a month",
			term, fmtUSD(tc.HourlyPerUnit), sz.Units, plural(sz.Units), HoursPerMonth, fmtUSD(tc.MonthlyUSD))
		if cmp, ok := compare(tc.MonthlyUSD, od, sz.Utilisation); ok {
			tc.SavingsUSD, tc.BreakEvenTrafficShare, tc.BreakEvenUtilisation, tc.CannotPay = cmp.savings, &cmp.share, &cmp.atUtil, cmp.cannotPay
			line += cmp.text(fmt.Sprintf("the %d unit%s", sz.Units, plural(sz.Units)))
		}
		arith = append(arith, line)
		sz.Terms = append(sz.Terms, tc)
		if cheapest == nil || tc.MonthlyUSD < cheapest.MonthlyUSD {
			cheapest = &sz.Terms[len(sz.Terms)-1]
		}
	}
	// Only a term that can pay is ever recommended: a break-even above
	// 100% utilisation needs more traffic than the units can carry.
	var payable *TermCost
	for i := range sz.Terms {
		if tc := &sz.Terms[i]; tc.Priced && !tc.CannotPay && (payable == nil || tc.MonthlyUSD < payable.MonthlyUSD) {
			payable = tc
		}
	}

	rec := Recommendation{Arithmetic: arith}
	switch {
	case !od.Priced:
		rec.Verdict = VerdictCannotCompare
		rec.Summary = "Cannot compare with on-demand: " + od.Missing + "."
	case cheapest == nil:
		rec.Verdict = VerdictCannotCompare
		rec.Summary = fmt.Sprintf("Sized at %d unit%s, but no term is priced: supply provisioned[%q].hourly_price_per_unit.%s from the Bedrock pricing page.",
			sz.Units, plural(sz.Units), id, strings.Join(missing, ", ."))
	case days < MinDays:
		rec.Verdict = VerdictInsufficientData
		rec.Summary = fmt.Sprintf("No commitment recommendation: only %s of data, fewer than %d. Collect at least %d days (the P95 must cover monthly cycles) and run sizing again; the figures are indicative only.",
			formatDays(days), MinDays, MinDays)
	case payable != nil && payable.MonthlyUSD < od.PerMonthUSD:
		rec.Verdict, rec.Term = VerdictProvisioned, payable.Term
		rec.Summary = fmt.Sprintf("Buy %d unit%s of provisioned throughput, %s: %s a month against %s on-demand saves %s (%s).",
			sz.Units, plural(sz.Units), termText(payable.Term), fmtUSD(payable.MonthlyUSD), fmtUSD(od.PerMonthUSD),
			fmtUSD(payable.SavingsUSD), fmtPct(payable.SavingsUSD/od.PerMonthUSD))
		if m.ThrottlesKnown && m.ThrottledMinutes == 0 {
			// A buy advice must carry the guard rail in its headline.
			rec.Summary += " No minute was throttled, so this is a cost saving only: on-demand already meets demand."
		}
	default:
		rec.Verdict = VerdictOnDemand
		if od.PerMonthUSD <= 0 {
			rec.Summary = "Stay on on-demand: the traffic has no on-demand cost to save."
			break
		}
		rec.Summary = fmt.Sprintf("Stay on on-demand: the cheapest priced term (%s) costs %s a month for %d unit%s against %s on-demand; it pays off only at %s of today's traffic.",
			termText(cheapest.Term), fmtUSD(cheapest.MonthlyUSD), sz.Units, plural(sz.Units), fmtUSD(od.PerMonthUSD),
			fmtPct(*cheapest.BreakEvenTrafficShare))
		if cheapest.CannotPay {
			rec.Summary = fmt.Sprintf("Stay on on-demand: the cheapest priced term (%s) costs %s a month for %d unit%s against %s on-demand and %s: it breaks even only at %s utilisation, more than the units can serve.",
				termText(cheapest.Term), fmtUSD(cheapest.MonthlyUSD), sz.Units, plural(sz.Units), fmtUSD(od.PerMonthUSD),
				cannotPayText, fmtPct(*cheapest.BreakEvenUtilisation))
		}
	}
	if cheapest != nil && len(missing) > 0 { // with no term priced, the summary says it
		m.Notes = append(m.Notes, fmt.Sprintf("not priced: %s; supply provisioned[%q].hourly_price_per_unit.%s to compare them",
			strings.Join(missing, ", "), id, strings.Join(missing, ", .")))
	}
	if rec.Verdict == VerdictProvisioned {
		m.Notes = append(m.Notes, "provisioned throughput is called by its ARN, not through a cross-region inference profile: the tier's model_id must change to the provisioned model ARN")
	}
	return sz, rec
}

// comparison is a commitment's monthly cost against on-demand: what it
// saves and where it breaks even. Model units and Reserved TPM both use it,
// so "cannot pay" means the same in both.
type comparison struct {
	monthly, onDemand float64
	savings           float64
	share, atUtil     float64
	cannotPay         bool
}

// compare compares a monthly commitment with the on-demand month of
// today's traffic, which keeps the commitment utilisation busy; ok is false
// when there is no on-demand cost to compare with.
func compare(monthly float64, od OnDemand, utilisation float64) (comparison, bool) {
	if !od.Priced || od.PerMonthUSD <= 0 {
		return comparison{}, false
	}
	c := comparison{monthly: monthly, onDemand: od.PerMonthUSD, savings: od.PerMonthUSD - monthly}
	c.share, c.atUtil = BreakEven(monthly, od.PerMonthUSD, utilisation)
	c.cannotPay = c.atUtil > 1
	return c, true
}

// text is the arithmetic line's tail; what names the capacity bought ("the
// 3 units", "the reservation").
func (c comparison) text(what string) string {
	s := fmt.Sprintf("; break-even at %s of today's traffic (%s ÷ %s), %s utilisation",
		fmtPct(c.share), fmtUSD(c.monthly), fmtUSD(c.onDemand), fmtPct(c.atUtil))
	if c.cannotPay {
		s += fmt.Sprintf(": %s, %s would have to be more than 100%% busy", cannotPayText, what)
	}
	return s
}

func termText(t tiering.Term) string {
	switch t {
	case tiering.TermNoCommitment:
		return "no commitment"
	case tiering.TermOneMonth:
		return "1-month commitment"
	case tiering.TermSixMonths:
		return "6-month commitment"
	}
	return string(t)
}

// peakHours returns up to three hours of the day with the highest mean
// tokens per minute, busiest first; hours without tokens are left out.
func peakHours(sum [24]float64, minutes [24]int) []PeakHour {
	var hs []PeakHour
	for h := range 24 {
		if minutes[h] > 0 && sum[h] > 0 {
			hs = append(hs, PeakHour{Hour: h, MeanTPM: sum[h] / float64(minutes[h])})
		}
	}
	slices.SortStableFunc(hs, func(a, b PeakHour) int {
		if a.MeanTPM != b.MeanTPM {
			if a.MeanTPM > b.MeanTPM {
				return -1
			}
			return 1
		}
		return a.Hour - b.Hour
	})
	return hs[:min(3, len(hs))]
}

// daily sums a model's on-demand cost per UTC day of the window.
func daily(d *Data, s *ModelSeries) []DailyCost {
	var out []DailyCost
	for i, x := range s.Minutes {
		t := d.Start.Add(time.Duration(i) * time.Minute)
		day := t.Format(time.DateOnly)
		if len(out) == 0 || out[len(out)-1].Day != day {
			out = append(out, DailyCost{Day: day})
		}
		out[len(out)-1].Hours += 1.0 / 60
		out[len(out)-1].OnDemandUSD += x.CostUSD
	}
	for i := range out {
		out[i].Hours = math.Round(out[i].Hours*1e6) / 1e6
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// noPriceFor says that a model has no on-demand price, and how to give one.
func noPriceFor(model string) string {
	return fmt.Sprintf("no on-demand price for %s: supply a tier with model_id %q, or provisioned[%q].on_demand with input_per_mtok and output_per_mtok, in the tiers file",
		model, model, model)
}
