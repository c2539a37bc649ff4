package tiering_test

import (
	"fmt"

	"github.com/tierq/tierq/tiering"
)

func ExampleConfig_Classify() {
	c := tiering.Default()
	for _, f := range []tiering.Facts{
		{Task: "summarize", EstimatedTokens: 1240},
		{Task: "extract", EstimatedTokens: 900, Signals: tiering.Signals{Tables: true}},
		{Task: "summarize", EstimatedTokens: 125000, Override: "economy"},
	} {
		d, err := c.Classify(f)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s (%s): %s\n", d.Tier, d.Rule, d.Reason)
	}
	// Output:
	// economy (size): document ~1,240 tokens ≤ economy limit 2,000; task summarize
	// standard (task-extract): task extract on structured document (tables), ~900 tokens
	// standard (override): job demands tier economy; task summarize; ~125,000 tokens + 4,096 max output exceed economy's 128,000-token context window, so moved to standard
}

func ExamplePrices_Cost() {
	haiku := tiering.Prices{InputPerMTok: 1.00, OutputPerMTok: 5.00}
	c := haiku.Cost(tiering.Usage{InputTokens: 1234, OutputTokens: 567})
	fmt.Printf("input $%.6f + output $%.6f = $%.6f\n", c.InputUSD, c.OutputUSD, c.TotalUSD)
	// Output:
	// input $0.001234 + output $0.002835 = $0.004069
}

func ExampleConfig_EstimateRange() {
	c := tiering.Default()
	low, high, d, err := c.EstimateRange(tiering.Facts{Task: "summarize", EstimatedTokens: 1240})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Most of this is the guardrail: on a model as cheap as Nova Micro it
	// costs more than the tokens.
	fmt.Printf("%s: $%.6f to $%.6f, of which guardrail $%.6f to $%.6f\n",
		d.Tier, low.TotalUSD, high.TotalUSD, low.GuardrailUSD, high.GuardrailUSD)
	// Output:
	// economy: $0.002863 to $0.071875, of which guardrail $0.002800 to $0.024800
}

func ExampleConfig_ShouldEscalate() {
	c := tiering.Default()
	escalate, reason := c.ShouldEscalate("economy", "end_turn", "extract", "Sure! The invoice total is 42.", 0)
	fmt.Println(escalate, reason)
	// Output:
	// true extract answer is not valid JSON on tier economy; retrying on standard
}

// A tier that asks for the flex service tier is priced at its flex prices;
// Estimate also gives the default-tier figures, so a dry run can show the
// saving.
func ExampleConfig_Estimate() {
	c, err := tiering.Load([]byte(`tiers:
  - name: standard
    model_id: us.anthropic.claude-haiku-4-5-20251001-v1:0
    context_window: 200000
    max_output_tokens: 1000
    system_prompts: {default: "Summarize the document."}
    service_tier: flex
    prices:
      input_per_mtok: 1.10
      output_per_mtok: 5.50
      service_tiers:
        flex: {input_per_mtok: 0.55, output_per_mtok: 2.75}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := c.Estimate(tiering.Facts{Task: "summarize", EstimatedTokens: 10_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Input 10,000 + 6 (the prompt) tokens; the short answer is capped at
	// max_output_tokens, so low = high. Flex: 10,006 × 0.55 + 1,000 × 2.75
	// = 8,253.3 µ$. Default: 10,006 × 1.10 + 1,000 × 5.50 = 16,506.6 µ$.
	fmt.Printf("flex $%.6f to $%.6f; default $%.6f to $%.6f\n",
		e.Low.TotalUSD, e.High.TotalUSD, e.StandardLow.TotalUSD, e.StandardHigh.TotalUSD)
	// Output:
	// flex $0.008253 to $0.008253; default $0.016507 to $0.016507
}
