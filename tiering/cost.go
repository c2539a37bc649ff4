package tiering

import (
	"github.com/tierq/tierq/jobv1"
)

// Usage, GuardrailUnits and Cost are the wire contract's (package jobv1):
// results carry them. Prices turn one into the other here.
type (
	Usage          = jobv1.Usage
	GuardrailUnits = jobv1.GuardrailUnits
	Cost           = jobv1.Cost
)

// Cost prices a usage: tokens × price per million / 1e6 and guardrail units
// × price per thousand / 1e3. Each product is taken before the division so
// that whole-number prices give the nearest float64 to the exact figure.
func (p Prices) Cost(u Usage) Cost {
	perM := func(tokens int, price float64) float64 { return float64(tokens) * price / 1e6 }
	perK := func(units int, price float64) float64 { return float64(units) * price / 1e3 }
	g := p.Guardrail
	c := Cost{
		InputUSD:      perM(u.InputTokens, p.InputPerMTok),
		OutputUSD:     perM(u.OutputTokens, p.OutputPerMTok),
		CacheReadUSD:  perM(u.CacheReadTokens, p.CacheReadPerMTok),
		CacheWriteUSD: perM(u.CacheWriteTokens, p.CacheWritePerMTok),
		GuardrailUSD: perK(u.GuardrailUnits.Content, g.ContentPer1K) +
			perK(u.GuardrailUnits.Topics, g.TopicsPer1K) +
			perK(u.GuardrailUnits.SensitiveInfo, g.SensitiveInfoPer1K) +
			perK(u.GuardrailUnits.Word, g.WordPer1K),
	}
	c.TotalUSD = c.InputUSD + c.OutputUSD + c.CacheReadUSD + c.CacheWriteUSD + c.GuardrailUSD
	return c
}

// Assumptions of EstimateRange.
const (
	// lowOutputShare: the low estimate expects an answer a tenth the size of
	// its input, typical of summaries, labels and extracted fields.
	lowOutputShare = 10
	// minLowOutput keeps the low estimate from pricing an empty answer.
	minLowOutput = 16
	// charsPerToken turns token estimates back into characters for
	// guardrail text units; it is the inverse of EstimateTokens.
	charsPerToken = 4
	// charsPerTextUnit is how AWS counts guardrail text units.
	charsPerTextUnit = 1000
)

// EstimateRange classifies a job and prices it without calling a model, for
// dry runs. Both figures assume:
//
//   - input = the document's estimated tokens + the tier's system prompt
//     for the task (estimated the same way); job instructions and message
//     framing are not counted;
//   - no prompt caching, so cache costs are zero;
//   - with a guardrail, every priced policy evaluates input and output,
//     at one text unit per 1,000 characters and 4 characters per token.
//
// low is one call on the chosen tier with a short answer:
// min(max output tokens, max(16, 10% of input)) output tokens.
//
// high is one call on the chosen tier that uses all its max output tokens,
// plus, when escalation can fire for the task, one more such call on each
// next tier up to escalation.max_steps (one with the defaults).
//
// Real costs fall outside the range when answers are longer than a tenth of
// the input yet the estimate is low, when caching is used, or when the
// token estimate is off (see EstimateTokens).
func (c *Config) EstimateRange(f Facts) (low, high Cost, d Decision, err error) {
	d, err = c.Classify(f)
	if err != nil {
		return Cost{}, Cost{}, Decision{}, err
	}
	t, _ := c.Tier(d.Tier)
	in := inputTokens(t, f)
	low = t.Prices.Cost(estimatedUsage(t, in, min(t.MaxOutputTokens, max(minLowOutput, ceilDiv(in, lowOutputShare)))))
	high = t.Prices.Cost(estimatedUsage(t, in, t.MaxOutputTokens))
	if !c.canEscalate(f.Task) {
		return low, high, d, nil
	}
	for range c.Escalation.MaxSteps {
		next, ok := c.Next(t.Name)
		if !ok {
			break
		}
		high = high.Add(next.Prices.Cost(estimatedUsage(next, inputTokens(next, f), next.MaxOutputTokens)))
		t = next
	}
	return low, high, d, nil
}

func inputTokens(t Tier, f Facts) int {
	return f.EstimatedTokens + EstimateTokens(t.SystemPrompt(f.Task))
}

func estimatedUsage(t Tier, in, out int) Usage {
	u := Usage{InputTokens: in, OutputTokens: out}
	if t.Guardrail.Enabled() {
		n := textUnits(in) + textUnits(out)
		u.GuardrailUnits = GuardrailUnits{Content: n, Topics: n, SensitiveInfo: n, Word: n}
	}
	return u
}

// textUnits estimates guardrail text units for a number of tokens.
func textUnits(tokens int) int { return ceilDiv(tokens*charsPerToken, charsPerTextUnit) }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// RoundUSD rounds a figure to 1e-12 USD for output (see jobv1.RoundUSD).
func RoundUSD(v float64) float64 { return jobv1.RoundUSD(v) }
