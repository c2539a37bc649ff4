package sizing_test

import (
	"context"
	"fmt"

	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

// The sizing rule on the numbers of testdata/sizing/steady-31d: a P95 of
// 50,000 input tokens a minute with 20% headroom, at 25,000 per unit.
func ExampleUnits() {
	required, units := sizing.Units(50000, 0.2, 25000)
	monthly := sizing.MonthlyCost(0.35, units)
	share, _ := sizing.BreakEven(monthly, 957.2125, 0)
	fmt.Printf("required %.0f tokens/min → %d units → $%.2f a month; pays off at %.1f%% of today's traffic\n",
		required, units, monthly, share*100)
	// Output: required 60000 tokens/min → 3 units → $766.50 a month; pays off at 80.1% of today's traffic
}

// Building a report from tierq's EMF lines and printing the terminal
// tables. The pipeline's EMF golden holds one minute of traffic, so the
// report warns and recommends no commitment.
func ExampleBuild() {
	tiers := tiering.Default()
	cfg := sizing.DefaultConfig(tiers)
	rep, err := sizing.Build(context.Background(), &sizing.EMFSource{
		Paths: []string{"../testdata/results/emf-lines.jsonl"},
		Tiers: tiers,
	}, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Warnings[0])
	m := rep.Models[0]
	fmt.Println(m.ModelID, m.Recommendation.Verdict)
	// Output:
	// less than 30 days of data (1 minute): costs are projections from a short window and no commitment is recommended
	// us.anthropic.claude-haiku-4-5-20251001-v1:0 cannot-size
}
