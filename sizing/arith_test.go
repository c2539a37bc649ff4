package sizing_test

import (
	"math"
	"testing"

	"github.com/tierq/tierq/sizing"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 95, 0},
		{"one value", []float64{7}, 95, 7},
		{"p50 of ten is the 5th", ten, 50, 5},
		{"p95 of ten is the 10th (ceil 9.5)", ten, 95, 10},
		{"p90 of ten is exactly the 9th", ten, 90, 9},
		{"p100 is the max", ten, 100, 10},
		{"tiny p is the min", ten, 0.001, 1},
		// 0.95 × 44,640 = 42,408 exactly: p × n before dividing keeps it
		// exact, where 0.95 × 44,640 in float64 would round up a rank.
		{"p95 of 31 days", ramp(44640), 95, 42408},
		{"p99 of 31 days (ceil 44,193.6)", ramp(44640), 99, 44194},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := sizing.Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

// ramp returns 1..n.
func ramp(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(i + 1)
	}
	return s
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	t.Parallel()
	in := []float64{5, 1, 4, 2, 3}
	got := sizing.Summarize(in)
	if want := (sizing.Percentiles{P50: 3, P95: 5, P99: 5, Max: 5}); got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if in[0] != 5 || in[1] != 1 {
		t.Errorf("Summarize sorted its input: %v", in)
	}
}

func TestUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                   string
		p95, headroom, perUnit float64
		wantRequired           float64
		wantUnits              int
	}{
		{"rounds up", 50000, 0.2, 25000, 60000, 3},
		{"exact multiple stays", 5000, 0.2, 3000, 6000, 2},
		{"no headroom", 50000, 0, 25000, 50000, 2},
		{"at least one unit", 100, 0.2, 25000, 120, 1},
		{"zero traffic still one unit", 0, 0.2, 25000, 0, 1},
		{"just over a multiple buys another", 50001, 0, 25000, 50001, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, units := sizing.Units(tt.p95, tt.headroom, tt.perUnit)
			if math.Abs(req-tt.wantRequired) > 1e-6 || units != tt.wantUnits {
				t.Errorf("Units(%v, %v, %v) = %v, %d; want %v, %d", tt.p95, tt.headroom, tt.perUnit, req, units, tt.wantRequired, tt.wantUnits)
			}
		})
	}
}

func TestMonthlyAndBreakEven(t *testing.T) {
	t.Parallel()
	if got := sizing.MonthlyCost(0.35, 3); math.Abs(got-766.5) > 1e-9 {
		t.Errorf("MonthlyCost(0.35, 3) = %v, want 766.5 (0.35 × 3 × 730)", got)
	}
	if got := sizing.ProjectMonthly(975.57, 744); math.Abs(got-957.2125) > 1e-9 {
		t.Errorf("ProjectMonthly(975.57, 744 h) = %v, want 957.2125", got)
	}
	if got := sizing.ProjectMonthly(5, 0); got != 0 {
		t.Errorf("ProjectMonthly over 0 h = %v, want 0", got)
	}
	tests := []struct {
		name                  string
		pt, od, util          float64
		wantShare, wantAtUtil float64
	}{
		{"pays off below today's traffic", 766.5, 957.2125, 0.2, 766.5 / 957.2125, 0.2 * 766.5 / 957.2125},
		{"needs twice today's traffic", 200, 100, 0.1, 2, 0.2},
		{"no on-demand cost never pays", 100, 0, 0.1, math.Inf(1), math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			share, at := sizing.BreakEven(tt.pt, tt.od, tt.util)
			if !near(share, tt.wantShare) || !near(at, tt.wantAtUtil) {
				t.Errorf("BreakEven(%v, %v, %v) = %v, %v; want %v, %v", tt.pt, tt.od, tt.util, share, at, tt.wantShare, tt.wantAtUtil)
			}
		})
	}
}

func near(a, b float64) bool {
	if math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := sizing.Config{Headroom: -0.1}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want both problems")
	}
	for _, want := range []string{"tiers: required", "headroom: must be between 0 and 10 (got -0.1)"} {
		if !contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to contain %q", err, want)
		}
	}
}
