package sizing

import (
	"math"
	"slices"
)

// HoursPerMonth is the month provisioned throughput is priced over: AWS's
// convention of 730 hours (8,760 a year ÷ 12). On-demand costs are
// projected to the same month, so the two compare like for like.
const HoursPerMonth = 730

// MinDays is how much traffic the sizing rule wants before a commitment is
// recommended: fewer days miss monthly cycles (month-end batches, payroll).
const MinDays = 30

// unitSlack absorbs float noise in required ÷ per-unit (60,000.000000000007
// ÷ 25,000 must not buy a third unit): a shortfall below a billionth of a
// unit is not real demand.
const unitSlack = 1e-9

// Percentiles are per-minute figures over every minute of the window, quiet
// minutes counting as zero.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// ascending values: the smallest value that at least p% of values are at or
// below, that is values[ceil(p×n/100) − 1]. Nearest rank always returns an
// observed minute, so a hand count over a trace gives the same answer;
// p×n is taken before dividing, exact for whole p. It returns 0 for no
// values.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100))
	return sorted[min(max(rank, 1), n)-1]
}

// Summarize returns the percentiles of values, which it does not modify.
func Summarize(values []float64) Percentiles {
	s := slices.Clone(values)
	slices.Sort(s)
	return Percentiles{P50: Percentile(s, 50), P95: Percentile(s, 95), P99: Percentile(s, 99), Max: Percentile(s, 100)}
}

// Units returns the tokens per minute to provision for a P95 and headroom,
// and the model units that carries: ceiling(required ÷ perUnit), at least
// one, because a provisioned model has at least one unit.
func Units(p95, headroom, perUnit float64) (required float64, units int) {
	required = p95 * (1 + headroom)
	return required, max(1, int(math.Ceil(required/perUnit-unitSlack)))
}

// MonthlyCost is the provisioned cost of units for a month: hourly price
// per unit × units × 730 hours.
func MonthlyCost(hourlyPerUnit float64, units int) float64 {
	return hourlyPerUnit * float64(units) * HoursPerMonth
}

// ProjectMonthly projects a cost observed over some hours to a 730-hour
// month, assuming the traffic repeats.
func ProjectMonthly(cost, hours float64) float64 {
	if hours <= 0 {
		return 0
	}
	return cost * HoursPerMonth / hours
}

// BreakEven compares a provisioned monthly cost with the on-demand monthly
// cost of today's traffic, which uses the units at utilisation (mean
// tokens per minute ÷ provisioned capacity). Because on-demand cost grows
// with traffic, provisioned pays off once traffic reaches
// share = provisioned ÷ on-demand of today's, that is once the units are
// utilisation × share busy. share < 1 means it already pays off. For zero
// on-demand cost both are +Inf: no amount of today's (empty) traffic pays.
func BreakEven(provisionedMonthly, onDemandMonthly, utilisation float64) (share, atUtilisation float64) {
	if onDemandMonthly <= 0 {
		return math.Inf(1), math.Inf(1)
	}
	share = provisionedMonthly / onDemandMonthly
	return share, utilisation * share
}
