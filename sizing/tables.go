package sizing

import (
	"cmp"
	"maps"
	"slices"
)

// CostRow is one line of a tier or tenant cost table.
type CostRow struct {
	Name         string `json:"name"`
	Jobs         int    `json:"jobs"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	// ModelCostUSD is on the report's cost basis (model tokens, no
	// guardrail); Unpriced counts jobs whose model had no price.
	ModelCostUSD float64 `json:"model_cost_usd"`
	Unpriced     int     `json:"unpriced_jobs,omitempty"`
	// RecordedCostUSD is what the workers recorded, guardrail charges
	// included.
	RecordedCostUSD float64 `json:"recorded_cost_usd"`
	// Share is this row's part of all recorded cost.
	Share float64 `json:"share"`
}

// costTable sums job totals by key, largest recorded cost first.
func costTable(totals []JobTotals, key func(JobTotals) string) []CostRow {
	if len(totals) == 0 {
		return nil
	}
	rows := map[string]*CostRow{}
	var total float64
	for _, t := range totals {
		k := key(t)
		r, ok := rows[k]
		if !ok {
			r = &CostRow{Name: k}
			rows[k] = r
		}
		r.Jobs += t.Jobs
		r.InputTokens += t.InputTokens
		r.OutputTokens += t.OutputTokens
		r.ModelCostUSD += t.ModelCostUSD
		r.Unpriced += t.Unpriced
		r.RecordedCostUSD += t.RecordedCostUSD
		total += t.RecordedCostUSD
	}
	out := make([]CostRow, 0, len(rows))
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		r := *rows[k]
		if total > 0 {
			r.Share = r.RecordedCostUSD / total
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b CostRow) int { return cmp.Compare(b.RecordedCostUSD, a.RecordedCostUSD) })
	return out
}
