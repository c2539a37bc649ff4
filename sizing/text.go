package sizing

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON, for automation.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write sizing JSON: %w", err)
	}
	return nil
}

// errWriter keeps the first write error so the text report can be written
// without checking every line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// WriteText writes the report as terminal tables.
func (r *Report) WriteText(w io.Writer) error {
	e := &errWriter{w: w}
	e.printf("tierq sizing: %s (%s)\n", r.Source, strings.Join(r.Inputs, ", "))
	e.printf("window %s → %s UTC (%s), headroom %s, month = %d h\n",
		r.Start.Format("2006-01-02 15:04"), r.End.Format("2006-01-02 15:04"), formatDays(r.Days), fmtPct(r.Headroom), HoursPerMonth)
	e.printf("cost basis: %s\n", r.CostBasis)
	for _, wr := range r.Warnings {
		e.printf("WARNING: %s\n", wr)
	}
	for _, m := range r.Models {
		r.writeModel(e, m)
	}
	if r.Tiers != nil {
		e.printf("\nCOST BY TIER\n")
		writeCostTable(e, "tier", r.Tiers)
	}
	if r.Tenants != nil {
		e.printf("\nCOST BY TENANT\n")
		writeCostTable(e, "tenant", r.Tenants)
	}
	if e.err != nil {
		return fmt.Errorf("write sizing report: %w", e.err)
	}
	return nil
}

func (r *Report) writeModel(e *errWriter, m ModelReport) {
	tiers := ""
	if len(m.Tiers) > 0 {
		tiers = " (tier " + strings.Join(m.Tiers, ", ") + ")"
	}
	e.printf("\n== %s%s\n", m.ModelID, tiers)
	tw := tabwriter.NewWriter(e.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	row("tokens/min", "P50", "P95", "P99", "max")
	pr := func(name string, p Percentiles) {
		row(name, fmtNum(p.P50), fmtNum(p.P95), fmtNum(p.P99), fmtNum(p.Max))
	}
	pr("input", m.InputTPM)
	pr("output", m.OutputTPM)
	pr("total", m.TotalTPM)
	if m.EstimatedTPM != nil {
		pr("est. quota", *m.EstimatedTPM)
	}
	if e.err == nil {
		e.err = tw.Flush()
	}
	throttled := "throttles unknown"
	if m.ThrottlesKnown {
		throttled = fmt.Sprintf("throttled minutes %s of %s", fmtDec(float64(m.ThrottledMinutes), 0), fmtDec(float64(len(m.series.Minutes)), 0))
	}
	var peaks []string
	for _, p := range m.PeakHours {
		peaks = append(peaks, fmt.Sprintf("%02d:00 %s/min", p.Hour, fmtNum(p.MeanTPM)))
	}
	e.printf("requests %s · %s · peak hours (UTC, mean tokens) %s\n", fmtNum(m.Requests), throttled, orDash(strings.Join(peaks, ", ")))
	if m.OnDemand.Priced {
		e.printf("on-demand %s over %s = %s/day → %s/month\n",
			fmtUSD(m.OnDemand.TotalUSD), formatDays(r.Days), fmtUSD(m.OnDemand.PerDayUSD), fmtUSD(m.OnDemand.PerMonthUSD))
	} else {
		e.printf("on-demand: unknown, %s\n", m.OnDemand.Missing)
	}
	if sz := m.Sizing; sz != nil {
		e.printf("\n")
		tw := tabwriter.NewWriter(e.w, 0, 0, 2, ' ', tabwriter.AlignRight)
		row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
		row("capacity", "P95", "required", "per unit", "units")
		for _, l := range sz.Limits {
			row(l.Dimension, fmtNum(l.P95), fmtNum(l.Required), fmtNum(l.PerUnit), fmt.Sprint(l.Units))
		}
		if e.err == nil {
			e.err = tw.Flush()
		}
		e.printf("→ %d unit%s (binding: %s), utilisation today %s\n\n", sz.Units, plural(sz.Units), strings.Join(sz.Binding, " and "), fmtPct(sz.Utilisation))
		tw = tabwriter.NewWriter(e.w, 0, 0, 2, ' ', tabwriter.AlignRight)
		row = func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
		row("term", "$/unit-hour", "monthly", "saves/month", "break-even traffic", "at utilisation")
		for _, t := range sz.Terms {
			if !t.Priced {
				row(string(t.Term), "not priced", "-", "-", "-", "-")
				continue
			}
			share, util := "-", "-"
			if t.BreakEvenTrafficShare != nil {
				share, util = fmtPct(*t.BreakEvenTrafficShare), fmtPct(*t.BreakEvenUtilisation)
				if t.CannotPay {
					util += " (" + cannotPayText + ")"
				}
			}
			saves := "-"
			if m.OnDemand.Priced {
				saves = fmtUSD(t.SavingsUSD)
			}
			row(string(t.Term), fmtUSD(t.HourlyPerUnit), fmtUSD(t.MonthlyUSD), saves, share, util)
		}
		if e.err == nil {
			e.err = tw.Flush()
		}
	}
	rec := m.Recommendation
	term := ""
	if rec.Term != "" {
		term = ", " + string(rec.Term)
	}
	e.printf("\nRECOMMENDATION (%s%s): %s\n", rec.Verdict, term, rec.Summary)
	if len(rec.Arithmetic) > 0 {
		e.printf("arithmetic:\n")
		for _, a := range rec.Arithmetic {
			e.printf("  %s\n", a)
		}
	}
	for _, n := range m.Notes {
		e.printf("note: %s\n", n)
	}
	writeReserved(e, m)
	writeBurst(e, m.Burst)
	writeQuota(e, m.Quota)
}

// newTable returns a right-aligned table and its row function.
func newTable(e *errWriter) (*tabwriter.Writer, func(cells ...string)) {
	tw := tabwriter.NewWriter(e.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	return tw, func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
}

func flush(e *errWriter, tw *tabwriter.Writer) {
	if e.err == nil {
		e.err = tw.Flush()
	}
}

func writeReserved(e *errWriter, m ModelReport) {
	rs := m.Reserved
	if rs == nil {
		return
	}
	e.printf("\nRESERVED TIER (input = input + cache-write tokens)\n")
	tw, row := newTable(e)
	row("reserve", "P95", "required", "minimum", "reserved", "mean", "max")
	for _, l := range []struct {
		name string
		l    ReservedLimit
	}{{"input", rs.Input}, {"output", rs.Output}} {
		row(l.name, fmtNum(l.l.P95), fmtNum(l.l.Required), fmtNum(l.l.Minimum), fmtNum(l.l.TPM), fmtNum(l.l.MeanTPM), fmtNum(l.l.Max))
	}
	flush(e, tw)
	e.printf("utilisation today %s; overflow above the reservation %s input + %s output tokens\n\n",
		fmtPct(rs.Utilisation), fmtDec(rs.OverflowInputTokens, 0), fmtDec(rs.OverflowOutputTokens, 0))
	tw, row = newTable(e)
	row("term", "in $/1K TPM-month", "out $/1K TPM-month", "reservation", "overflow", "monthly", "saves/month", "break-even traffic", "at utilisation")
	for _, t := range rs.Terms {
		if !t.Priced {
			row(string(t.Term), "not priced", "-", "-", "-", "-", "-", "-", "-")
			continue
		}
		share, util, saves := "-", "-", "-"
		if t.BreakEvenTrafficShare != nil {
			share, util, saves = fmtPct(*t.BreakEvenTrafficShare), fmtPct(*t.BreakEvenUtilisation), fmtUSD(t.SavingsUSD)
			if t.CannotPay {
				util += " (" + cannotPayText + ")"
			}
		}
		row(string(t.Term), fmtUSD(t.InputPer1K), fmtUSD(t.OutputPer1K), fmtUSD(t.ReservationUSD), fmtUSD(rs.OverflowPerMonthUSD), fmtUSD(t.MonthlyUSD), saves, share, util)
	}
	flush(e, tw)
	e.printf("%s\narithmetic:\n", rs.Summary)
	for _, a := range rs.Arithmetic {
		e.printf("  %s\n", a)
	}
}

func writeBurst(e *errWriter, b *BurstAdvice) {
	if b == nil {
		return
	}
	e.printf("\nBURST ADVICE: %s\n", b.Headline)
	for _, a := range b.Advice {
		e.printf("  %s\n", a)
	}
}

func writeQuota(e *errWriter, q *QuotaFigures) {
	if q == nil {
		return
	}
	e.printf("\nQUOTA REQUEST FIGURES (steady = P50 of the %s active minutes, peak = busiest minute; requests are %s)\n",
		fmtDec(float64(q.ActiveMinutes), 0), q.RequestsAre)
	tw, row := newTable(e)
	row("per minute", "steady", "peak")
	row("TPM raw (input + cache writes + output)", fmtNum(q.SteadyTPM), fmtNum(q.PeakTPM))
	if q.SteadyQuotaTPM != nil {
		row(fmt.Sprintf("TPM with output burndown ×%s", fmtDec(q.OutputBurndown, 2)), fmtNum(*q.SteadyQuotaTPM), fmtNum(*q.PeakQuotaTPM))
	}
	row("RPM", fmtNum(q.SteadyRPM), fmtNum(q.PeakRPM))
	flush(e, tw)
	e.printf("average tokens per request: input %s, cache write %s, output %s\n",
		fmtNum(q.AvgInputTokens), fmtNum(q.AvgCacheWriteTokens), fmtNum(q.AvgOutputTokens))
	for _, n := range q.Notes {
		e.printf("note: %s\n", n)
	}
}

func writeCostTable(e *errWriter, what string, rows []CostRow) {
	tw := tabwriter.NewWriter(e.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join([]string{what, "jobs", "input tokens", "output tokens", "model cost", "recorded cost", "share", ""}, "\t"))
	for _, r := range rows {
		model := fmtUSD(r.ModelCostUSD)
		if r.Unpriced > 0 {
			model += fmt.Sprintf(" (%s unpriced)", fmtDec(float64(r.Unpriced), 0))
		}
		fmt.Fprintln(tw, strings.Join([]string{r.Name, fmtDec(float64(r.Jobs), 0), fmtDec(float64(r.InputTokens), 0),
			fmtDec(float64(r.OutputTokens), 0), model, fmtUSD(r.RecordedCostUSD), fmtPct(r.Share), ""}, "\t"))
	}
	if e.err == nil {
		e.err = tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dayLabel is a short date for chart axes.
func dayLabel(t time.Time) string { return t.Format("Jan 2") }
