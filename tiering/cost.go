package tiering

import (
	"encoding/json"
	"math"
)

// Usage is what one call consumed, as Bedrock reports it (Converse usage and
// the guardrail trace's usage).
type Usage struct {
	InputTokens      int            `json:"input_tokens"`
	OutputTokens     int            `json:"output_tokens"`
	CacheReadTokens  int            `json:"cache_read_tokens"`
	CacheWriteTokens int            `json:"cache_write_tokens"`
	GuardrailUnits   GuardrailUnits `json:"guardrail_units"`
}

// GuardrailUnits are text units billed per guardrail policy (one unit is up
// to 1,000 characters).
type GuardrailUnits struct {
	Content       int `json:"content"`
	Topics        int `json:"topics"`
	SensitiveInfo int `json:"sensitive_info"`
	Word          int `json:"word"`
}

// Cost is a cost in USD broken down by what was billed. Nothing is rounded:
// callers format for display and sum the unrounded figures, so many small
// jobs do not drift from the bill.
type Cost struct {
	InputUSD      float64 `json:"input_usd"`
	OutputUSD     float64 `json:"output_usd"`
	CacheReadUSD  float64 `json:"cache_read_usd"`
	CacheWriteUSD float64 `json:"cache_write_usd"`
	GuardrailUSD  float64 `json:"guardrail_usd"`
	TotalUSD      float64 `json:"total_usd"`
}

// Add returns the sum of two costs, e.g. a job's attempts across tiers.
func (c Cost) Add(o Cost) Cost {
	return Cost{
		InputUSD:      c.InputUSD + o.InputUSD,
		OutputUSD:     c.OutputUSD + o.OutputUSD,
		CacheReadUSD:  c.CacheReadUSD + o.CacheReadUSD,
		CacheWriteUSD: c.CacheWriteUSD + o.CacheWriteUSD,
		GuardrailUSD:  c.GuardrailUSD + o.GuardrailUSD,
		TotalUSD:      c.TotalUSD + o.TotalUSD,
	}
}

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

// RoundUSD rounds a figure to 1e-12 USD, far below any billing unit, for
// output: results read 0.00000392 rather than 0.000003920000000000001
// (float64 noise). Sums are taken over unrounded values.
func RoundUSD(v float64) float64 { return math.Round(v*1e12) / 1e12 }

// MarshalJSON writes each figure through RoundUSD.
func (c Cost) MarshalJSON() ([]byte, error) {
	type plain Cost
	r := RoundUSD
	return json.Marshal(plain{
		InputUSD: r(c.InputUSD), OutputUSD: r(c.OutputUSD), CacheReadUSD: r(c.CacheReadUSD),
		CacheWriteUSD: r(c.CacheWriteUSD), GuardrailUSD: r(c.GuardrailUSD), TotalUSD: r(c.TotalUSD),
	})
}
