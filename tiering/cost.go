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

// Cost prices a usage:
//
//	input         input_tokens × input_per_mtok / 1e6
//	cache read    cache_read_tokens × cache_read_per_mtok / 1e6
//	cache write   (cache_write_tokens − cache_write_1h_tokens) × cache_write_per_mtok / 1e6
//	              + cache_write_1h_tokens × cache_write_1h_per_mtok / 1e6
//	output        output_tokens × output_per_mtok / 1e6
//	guardrail     Σ over policies: text units × policy price per 1K / 1e3
//	total         the sum of the five
//
// Bedrock's input_tokens exclude cache reads and writes, so no token is
// counted twice. Use the prices of the model and service tier that served
// the call (Tier.CallPrices). Each product is taken before the division so
// that whole-number prices give the nearest float64 to the exact figure.
func (p Prices) Cost(u Usage) Cost {
	perM := func(tokens int, price float64) float64 { return float64(tokens) * price / 1e6 }
	perK := func(units int, price float64) float64 { return float64(units) * price / 1e3 }
	g := p.Guardrail
	c := Cost{
		InputUSD:     perM(u.InputTokens, p.InputPerMTok),
		OutputUSD:    perM(u.OutputTokens, p.OutputPerMTok),
		CacheReadUSD: perM(u.CacheReadTokens, p.CacheReadPerMTok),
		CacheWriteUSD: perM(u.CacheWriteTokens-u.CacheWrite1hTokens, p.CacheWritePerMTok) +
			perM(u.CacheWrite1hTokens, p.CacheWrite1hPerMTok),
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

// Estimate is a job's cost before any call: where it would go and a range.
type Estimate struct {
	Decision Decision
	// Low and High are as configured: at each tier's service tier, with
	// its prompt caching.
	Low, High Cost
	// StandardLow and StandardHigh are the same calls at the default
	// service tier without caching, so a dry run can show what service
	// tiers and caching save.
	StandardLow, StandardHigh Cost
}

// EstimateRange is Estimate's configured range, for callers that need
// nothing else.
func (c *Config) EstimateRange(f Facts) (low, high Cost, d Decision, err error) {
	e, err := c.Estimate(f)
	return e.Low, e.High, e.Decision, err
}

// Estimate classifies a job and prices it without calling a model, for dry
// runs. Every figure assumes:
//
//   - input = the job's estimated prompt tokens (f.EstimatedTokens) + the
//     tier's system prompt for the task (estimated the same way);
//   - with a guardrail, every priced policy evaluates input and output,
//     at one text unit per 1,000 characters and 4 characters per token;
//   - calls are served at the tier's service_tier and priced at its prices
//     (a model that refuses the tier costs default prices instead).
//
// Low is one call on the chosen tier with a short answer:
// min(max output tokens, max(16, 10% of input)) output tokens, and, where
// the tier caches its system prompt (prompt_cache, and the prompt reaches
// min_tokens), the prompt read from the cache.
//
// High is one call on the chosen tier that uses all its max output tokens,
// with the system prompt written to the cache where it is cached, plus,
// when escalation can fire for the task, one more such call on each next
// tier up to escalation.max_steps (one with the defaults).
//
// Real costs fall outside the range when answers are longer than a tenth of
// the input yet the estimate is low, or when the token estimate is off (see
// EstimateTokens).
func (c *Config) Estimate(f Facts) (Estimate, error) {
	d, err := c.Classify(f)
	if err != nil {
		return Estimate{}, err
	}
	e := Estimate{Decision: d}
	t, _ := c.Tier(d.Tier)
	in := inputTokens(t, f)
	short := min(t.MaxOutputTokens, max(minLowOutput, ceilDiv(in, lowOutputShare)))
	e.Low, e.StandardLow = estimateCall(t, f, short, cacheRead)
	e.High, e.StandardHigh = estimateCall(t, f, t.MaxOutputTokens, cacheWrite)
	if !c.canEscalate(f.Task) {
		return e, nil
	}
	for range c.Escalation.MaxSteps {
		next, ok := c.Next(t.Name)
		if !ok {
			break
		}
		hi, std := estimateCall(next, f, next.MaxOutputTokens, cacheWrite)
		e.High, e.StandardHigh = e.High.Add(hi), e.StandardHigh.Add(std)
		t = next
	}
	return e, nil
}

type cacheUse int

const (
	cacheRead cacheUse = iota
	cacheWrite
)

// estimateCall prices one call on t with out output tokens, as configured
// and at default without caching.
func estimateCall(t Tier, f Facts, out int, cu cacheUse) (configured, standard Cost) {
	in := inputTokens(t, f)
	u := estimatedUsage(t, in, out)
	standard = t.Prices.Cost(u)
	if prefix := CachedPrefixTokens(t, f.Task); prefix > 0 {
		u.InputTokens -= prefix
		if cu == cacheRead {
			u.CacheReadTokens = prefix
		} else {
			u.CacheWriteTokens = prefix
			if t.PromptCache.TTL == CacheTTL1h {
				u.CacheWrite1hTokens = prefix
			}
		}
	}
	p, _ := t.CallPrices(t.ModelID, t.RequestedServiceTier())
	return p.Cost(u), standard
}

// CachedPrefixTokens is the estimated size of the system prompt a tier
// caches for a task, or 0 when it caches none: caching is off, or the
// prompt is shorter than the model's minimum cacheable prefix.
func CachedPrefixTokens(t Tier, task string) int {
	if !t.PromptCache.Enabled() {
		return 0
	}
	n := EstimateTokens(t.SystemPrompt(task))
	if n < t.PromptCache.MinTokens {
		return 0
	}
	return n
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
