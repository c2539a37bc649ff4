package jobv1

import (
	"encoding/json"
	"math"
)

// Usage is what one call consumed, as Bedrock reports it (Converse usage and
// the guardrail trace's usage).
type Usage struct {
	InputTokens      int `json:"input_tokens"`
	OutputTokens     int `json:"output_tokens"`
	CacheReadTokens  int `json:"cache_read_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
	// CacheWrite1hTokens is the part of CacheWriteTokens written with the
	// 1-hour TTL (Bedrock's usage.cacheDetails); the rest used 5 minutes.
	// The two are priced differently.
	CacheWrite1hTokens int            `json:"cache_write_1h_tokens,omitempty"`
	GuardrailUnits     GuardrailUnits `json:"guardrail_units"`
}

// Add returns the sum of two usages, e.g. a job's calls across tiers.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		InputTokens:        u.InputTokens + o.InputTokens,
		OutputTokens:       u.OutputTokens + o.OutputTokens,
		CacheReadTokens:    u.CacheReadTokens + o.CacheReadTokens,
		CacheWriteTokens:   u.CacheWriteTokens + o.CacheWriteTokens,
		CacheWrite1hTokens: u.CacheWrite1hTokens + o.CacheWrite1hTokens,
		GuardrailUnits:     u.GuardrailUnits.Add(o.GuardrailUnits),
	}
}

// Add returns the sum of two counts of text units.
func (g GuardrailUnits) Add(o GuardrailUnits) GuardrailUnits {
	return GuardrailUnits{
		Content:       g.Content + o.Content,
		Topics:        g.Topics + o.Topics,
		SensitiveInfo: g.SensitiveInfo + o.SensitiveInfo,
		Word:          g.Word + o.Word,
	}
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
