package demo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// Report is what a demo run did, built from the result objects, the
// dead-letter queue and the simulator's counters.
type Report struct {
	Tiers       []string // tier names in configuration order, then "none"
	Rows        map[string]*Row
	Results     []jobv1.Result
	DeadLetters []DeadLetter
	Escalations []string
	Blocked     map[string]int // by policy
	Masked      int
	Released    int64
	Limits      []string // each worker's adaptive limiter per model at the end
	Sim         bedrocksim.Stats
	Elapsed     time.Duration
	// Tiered is what the run cost: the sum of the results' costs.
	Tiered tiering.Cost
	// AllLast is what the same calls would have cost had every job gone
	// to the last tier: each result's usage (all its calls) priced with the
	// last tier's prices. Tokens are the ones actually used, so it leaves
	// out how a more capable model would have answered differently.
	AllLast tiering.Cost
	// LastTier names the last tier, whose prices AllLast uses.
	LastTier string

	lastPrices tiering.Prices
}

// Row totals one tier.
type Row struct {
	Statuses     map[string]int
	InputTokens  int
	OutputTokens int
	Cost         tiering.Cost
	Attempts     int
}

// DeadLetter is a message the workers dead-lettered, with their reason.
type DeadLetter struct {
	MessageID string `json:"message_id"`
	Reason    string `json:"reason"`
	Body      string `json:"body"`
}

func newReport(tiers *tiering.Config) *Report {
	r := &Report{Rows: map[string]*Row{}, Blocked: map[string]int{}}
	for _, t := range tiers.Tiers {
		r.Tiers = append(r.Tiers, t.Name)
	}
	if n := len(tiers.Tiers); n > 0 {
		last := tiers.Tiers[n-1]
		r.LastTier, r.lastPrices = last.Name, last.Prices
	}
	r.Tiers = append(r.Tiers, "none")
	return r
}

func (r *Report) add(res jobv1.Result) {
	r.Results = append(r.Results, res)
	tier := res.Tier
	if tier == "" {
		tier = "none"
	}
	row, ok := r.Rows[tier]
	if !ok {
		row = &Row{Statuses: map[string]int{}}
		r.Rows[tier] = row
	}
	row.Statuses[res.Status]++
	row.InputTokens += res.Usage.InputTokens
	row.OutputTokens += res.Usage.OutputTokens
	row.Cost = row.Cost.Add(res.Cost)
	row.Attempts += res.Attempts
	r.Tiered = r.Tiered.Add(res.Cost)
	r.AllLast = r.AllLast.Add(r.lastPrices.Cost(res.Usage))
	for _, e := range res.Escalations {
		r.Escalations = append(r.Escalations, fmt.Sprintf("%s: %s → %s (%s)", res.JobID, e.FromTier, e.ToTier, e.Reason))
	}
	if g := res.Guardrail; g != nil {
		switch g.Action {
		case jobv1.GuardrailBlocked:
			for _, p := range g.Policies {
				r.Blocked[p]++
			}
		case jobv1.GuardrailMasked:
			r.Masked++
		}
	}
}

// ModelUSD is a cost without its guardrail part: what the model calls
// themselves cost.
func ModelUSD(c tiering.Cost) float64 { return c.TotalUSD - c.GuardrailUSD }

// Ratio is the tiered run's cost as a share of AllLast, for model cost alone
// and with guardrail cost; ok is false when AllLast is zero (nothing used).
func (r *Report) Ratio() (model, withGuardrail float64, ok bool) {
	if ModelUSD(r.AllLast) <= 0 || r.AllLast.TotalUSD <= 0 {
		return 0, 0, false
	}
	return ModelUSD(r.Tiered) / ModelUSD(r.AllLast), r.Tiered.TotalUSD / r.AllLast.TotalUSD, true
}

// Count returns how many results have status.
func (r *Report) Count(status string) int {
	n := 0
	for _, row := range r.Rows {
		n += row.Statuses[status]
	}
	return n
}

// printRatio compares the run's cost with every job on the last tier.
func (r *Report) printRatio(w io.Writer) {
	model, withGuardrail, ok := r.Ratio()
	if !ok {
		fmt.Fprintf(w, "\ntiered vs all on %s: nothing to compare, no tokens were used\n", r.LastTier)
		return
	}
	fmt.Fprintf(w, "\ntiered vs all on %s (the same calls' usage at %s's prices):\n", r.LastTier, r.LastTier)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\ttiered USD\tall %s USD\tratio\t\n", r.LastTier)
	fmt.Fprintf(tw, "model cost\t%s\t%s\t%s\t\n", formatUSD(ModelUSD(r.Tiered)), formatUSD(ModelUSD(r.AllLast)), formatRatio(model))
	fmt.Fprintf(tw, "with guardrail\t%s\t%s\t%s\t\n", formatUSD(r.Tiered.TotalUSD), formatUSD(r.AllLast.TotalUSD), formatRatio(withGuardrail))
	tw.Flush()
}

func formatUSD(v float64) string { return fmt.Sprintf("%.6f", v) }

func formatRatio(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

// Print writes the summary table and where the outputs are.
func (r *Report) Print(w io.Writer, out string) {
	fmt.Fprintf(w, "\n== tierq demo: %d results, %d dead letters in %s ==\n\n", len(r.Results), len(r.DeadLetters), r.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tier\tsucceeded\tblocked\tfailed\tmodel calls\tinput tokens\toutput tokens\tcost USD\t")
	var total Row
	total.Statuses = map[string]int{}
	for _, name := range r.Tiers {
		row, ok := r.Rows[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.6f\t\n", name, row.Statuses[jobv1.StatusSucceeded],
			row.Statuses[jobv1.StatusBlocked], row.Statuses[jobv1.StatusFailed], row.Attempts,
			row.InputTokens, row.OutputTokens, row.Cost.TotalUSD)
		for s, n := range row.Statuses {
			total.Statuses[s] += n
		}
		total.Attempts += row.Attempts
		total.InputTokens += row.InputTokens
		total.OutputTokens += row.OutputTokens
		total.Cost = total.Cost.Add(row.Cost)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t%.6f\t\n", total.Statuses[jobv1.StatusSucceeded],
		total.Statuses[jobv1.StatusBlocked], total.Statuses[jobv1.StatusFailed], total.Attempts,
		total.InputTokens, total.OutputTokens, total.Cost.TotalUSD)
	tw.Flush()
	fmt.Fprintf(w, "  of which guardrail %.6f USD\n", total.Cost.GuardrailUSD)
	r.printRatio(w)

	fmt.Fprintln(w, "\nBedrock (simulator counters):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\trequests\taccepted\tthrottled\tinjected errors\tpeak in flight\t")
	for _, id := range slices.Sorted(maps.Keys(r.Sim.Models)) {
		m := r.Sim.Models[id]
		if m.Requests == 0 {
			continue
		}
		var thr, errs int64
		for _, n := range m.Throttled {
			thr += n
		}
		for _, n := range m.Errors {
			errs += n
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", id, m.Requests, m.Accepted, thr, errs, m.PeakInFlight)
	}
	tw.Flush()

	if len(r.Limits) > 0 {
		fmt.Fprintln(w, "\nadaptive limiters at the end (they back off on throttles and grow while used):")
		for _, l := range r.Limits {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}

	var blocked []string
	for _, p := range slices.Sorted(maps.Keys(r.Blocked)) {
		blocked = append(blocked, fmt.Sprintf("%s %d", p, r.Blocked[p]))
	}
	fmt.Fprintf(w, "\nguardrail interventions: %d blocked (%s), %d masked and went on\n",
		r.Count(jobv1.StatusBlocked), strings.Join(blocked, ", "), r.Masked)
	fmt.Fprintf(w, "escalations: %d\n", len(r.Escalations))
	for _, e := range r.Escalations {
		fmt.Fprintf(w, "  %s\n", e)
	}
	for _, res := range r.Results {
		if res.Status == jobv1.StatusFailed && res.Error != nil {
			fmt.Fprintf(w, "failed: %s: %s: %s\n", res.JobID, res.Error.Code, res.Error.Message)
		}
	}
	fmt.Fprintf(w, "messages released for a later attempt: %d\n", r.Released)
	fmt.Fprintf(w, "dead-lettered: %d\n", len(r.DeadLetters))
	for _, d := range r.DeadLetters {
		fmt.Fprintf(w, "  %s\n", d.Reason)
	}
	fmt.Fprintf(w, "\nresults:      %s/results/ (one JSON per job, as written to S3)\n", out)
	fmt.Fprintf(w, "dead letters: %s/dead-letter/\nmetrics:      %s/metrics.emf (CloudWatch EMF, a line per job and per model call)\nlogs:         %s/worker.log\n", out, out, out)
}
