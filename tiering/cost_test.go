package tiering_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/tierq/tierq/tiering"
)

// near compares costs to 1e-12 relative: the expected figures are written
// as decimals, which float64 holds only to the nearest binary value.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-12*math.Max(1, math.Abs(want))
}

func costNear(got, want tiering.Cost) bool {
	return near(got.InputUSD, want.InputUSD) && near(got.OutputUSD, want.OutputUSD) &&
		near(got.CacheReadUSD, want.CacheReadUSD) && near(got.CacheWriteUSD, want.CacheWriteUSD) &&
		near(got.GuardrailUSD, want.GuardrailUSD) && near(got.TotalUSD, want.TotalUSD)
}

func TestPricesCost(t *testing.T) {
	t.Parallel()
	gr := tiering.GuardrailPrices{ContentPer1K: 0.15, TopicsPer1K: 0.15, SensitiveInfoPer1K: 0.10, WordPer1K: 0}
	novaMicro := tiering.Prices{InputPerMTok: 0.035, OutputPerMTok: 0.14}
	haiku := tiering.Prices{InputPerMTok: 1.00, OutputPerMTok: 5.00, CacheReadPerMTok: 0.10, CacheWritePerMTok: 1.25, Guardrail: gr}
	sonnet := tiering.Prices{InputPerMTok: 3.00, OutputPerMTok: 15.00, CacheReadPerMTok: 0.30, CacheWritePerMTok: 3.75, Guardrail: gr}
	tests := []struct {
		name   string
		prices tiering.Prices
		usage  tiering.Usage
		want   tiering.Cost
	}{
		{"nothing used", sonnet, tiering.Usage{}, tiering.Cost{}},
		{"1M input at $3", sonnet, tiering.Usage{InputTokens: 1_000_000},
			tiering.Cost{InputUSD: 3.00, TotalUSD: 3.00}},
		// 1,234 × 1.00 / 1e6 = 0.001234; 567 × 5.00 / 1e6 = 0.002835.
		{"1,234 in + 567 out on Haiku", haiku, tiering.Usage{InputTokens: 1234, OutputTokens: 567},
			tiering.Cost{InputUSD: 0.001234, OutputUSD: 0.002835, TotalUSD: 0.004069}},
		// 1M × 0.035 = 0.035; 1M × 0.14 = 0.14.
		{"1M in + 1M out on Nova Micro", novaMicro, tiering.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000},
			tiering.Cost{InputUSD: 0.035, OutputUSD: 0.14, TotalUSD: 0.175}},
		// 10,000 × 0.30 / 1e6 = 0.003; 2,000 × 3.75 / 1e6 = 0.0075.
		{"cache on Sonnet", sonnet, tiering.Usage{CacheReadTokens: 10_000, CacheWriteTokens: 2_000},
			tiering.Cost{CacheReadUSD: 0.003, CacheWriteUSD: 0.0075, TotalUSD: 0.0105}},
		// 3 × 0.15/1000 × 2 (content, topics) + 3 × 0.10/1000 + 3 × 0 = 0.0009 + 0.0003.
		{"guardrail units", haiku, tiering.Usage{GuardrailUnits: tiering.GuardrailUnits{Content: 3, Topics: 3, SensitiveInfo: 3, Word: 3}},
			tiering.Cost{GuardrailUSD: 0.0012, TotalUSD: 0.0012}},
		// 100 × 1 + 50 × 5 + 1,000 × 0.10 + 200 × 1.25 = 100 + 250 + 100 + 250 µ$, plus 1 content unit 0.00015.
		{"everything on Haiku", haiku, tiering.Usage{InputTokens: 100, OutputTokens: 50, CacheReadTokens: 1000, CacheWriteTokens: 200,
			GuardrailUnits: tiering.GuardrailUnits{Content: 1}},
			tiering.Cost{InputUSD: 0.0001, OutputUSD: 0.00025, CacheReadUSD: 0.0001, CacheWriteUSD: 0.00025, GuardrailUSD: 0.00015, TotalUSD: 0.00085}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.prices.Cost(tt.usage); !costNear(got, tt.want) {
				t.Errorf("Cost(%+v)\n got %+v\nwant %+v", tt.usage, got, tt.want)
			}
		})
	}
}

func TestCostExactForWholePrices(t *testing.T) {
	t.Parallel()
	got := tiering.Prices{InputPerMTok: 3, OutputPerMTok: 15}.Cost(tiering.Usage{InputTokens: 1_000_000})
	if got.InputUSD != 3 || got.TotalUSD != 3 {
		t.Errorf("1M tokens at $3 = %v (total %v), want exactly 3", got.InputUSD, got.TotalUSD)
	}
}

func TestCostAddAndJSON(t *testing.T) {
	t.Parallel()
	a := tiering.Cost{InputUSD: 1, OutputUSD: 2, CacheReadUSD: 3, CacheWriteUSD: 4, GuardrailUSD: 5, TotalUSD: 15}
	if got, want := a.Add(a), (tiering.Cost{InputUSD: 2, OutputUSD: 4, CacheReadUSD: 6, CacheWriteUSD: 8, GuardrailUSD: 10, TotalUSD: 30}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
	b, err := json.Marshal(tiering.Cost{InputUSD: 0.001234, TotalUSD: 0.001234})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"input_usd":0.001234,"output_usd":0,"cache_read_usd":0,"cache_write_usd":0,"guardrail_usd":0,"total_usd":0.001234}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
}

// twoTiers has "only" (1/2 $/MTok, 100 max output) and "big" (10/20 $/MTok,
// 1,000 max output); both system prompts are 12 characters = 3 tokens.
const twoTiers = oneTier + `
  - name: big
    model_id: m2
    context_window: 10000
    max_output_tokens: 1000
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 10, output_per_mtok: 20}
`

func TestEstimateRange(t *testing.T) {
	t.Parallel()
	withGuardrail := strings.Replace(oneTier, "    prices: {input_per_mtok: 1, output_per_mtok: 2}\n", `
    guardrail: {id: g, version: "1"}
    prices: {input_per_mtok: 1, output_per_mtok: 2, guardrail: {content_per_1k: 0.15, word_per_1k: 0.5}}
`, 1)

	tests := []struct {
		name      string
		yaml      string
		facts     tiering.Facts
		low, high float64 // TotalUSD
		tier      string
	}{
		// in = 97 + 3 = 100; low out = max(16, 10) = 16: 100×1 + 16×2 = 132 µ$.
		// high out = 100: 100×1 + 100×2 = 300 µ$; no next tier.
		{"one tier", oneTier, tiering.Facts{Task: "summarize", EstimatedTokens: 97}, 0.000132, 0.0003, "only"},
		// in = 800; low out = min(100, 80) = 80: 800 + 160 = 960 µ$; high 800 + 200 = 1,000 µ$.
		{"low output is a tenth of the input", oneTier, tiering.Facts{Task: "summarize", EstimatedTokens: 797}, 0.00096, 0.001, "only"},
		// Plus one escalation to big: 100×10 + 1,000×20 = 21,000 µ$.
		{"high includes one escalation", twoTiers, tiering.Facts{Task: "summarize", EstimatedTokens: 97}, 0.000132, 0.0213, "only"},
		{"no escalation when disabled", twoTiers + "escalation: {enabled: false}\n",
			tiering.Facts{Task: "summarize", EstimatedTokens: 97}, 0.000132, 0.0003, "only"},
		{"only invalid JSON escalates, summarize cannot", twoTiers + "escalation: {on_max_tokens: false}\n",
			tiering.Facts{Task: "summarize", EstimatedTokens: 97}, 0.000132, 0.0003, "only"},
		{"only invalid JSON escalates, extract can", twoTiers + "escalation: {on_max_tokens: false}\n",
			tiering.Facts{Task: "extract", EstimatedTokens: 97}, 0.000132, 0.0213, "only"},
		// Already on the last tier: 100×10 + 16×20 = 1,320 µ$; 100×10 + 1,000×20 = 21,000 µ$.
		{"last tier cannot escalate", twoTiers, tiering.Facts{Task: "summarize", EstimatedTokens: 97, Override: "big"}, 0.00132, 0.021, "big"},
		// Guardrail: input 100 tokens = 400 chars = 1 unit, output 16 or 100 tokens = 1 unit:
		// 2 units × (0.15 + 0.5) / 1000 = 1,300 µ$ on top.
		{"guardrail units for input and output", withGuardrail, tiering.Facts{Task: "summarize", EstimatedTokens: 97}, 0.001432, 0.0016, "only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tiering.Load([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			low, high, d, err := c.EstimateRange(tt.facts)
			if err != nil {
				t.Fatal(err)
			}
			if d.Tier != tt.tier {
				t.Errorf("tier = %s, want %s", d.Tier, tt.tier)
			}
			if !near(low.TotalUSD, tt.low) || !near(high.TotalUSD, tt.high) {
				t.Errorf("range = %v..%v, want %v..%v", low.TotalUSD, high.TotalUSD, tt.low, tt.high)
			}
		})
	}
}

func TestEstimateRangeError(t *testing.T) {
	t.Parallel()
	_, _, _, err := tiering.Default().EstimateRange(tiering.Facts{Task: "summarize", EstimatedTokens: 1_000_000})
	if err == nil {
		t.Error("EstimateRange of a document no tier fits: nil error")
	}
}

func TestCostJSONHasNoFloatNoise(t *testing.T) {
	t.Parallel()
	c := tiering.Prices{InputPerMTok: 0.035, OutputPerMTok: 0.14}.Cost(tiering.Usage{InputTokens: 112, OutputTokens: 26})
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"input_usd":0.00000392,"output_usd":0.00000364,"cache_read_usd":0,"cache_write_usd":0,"guardrail_usd":0,"total_usd":0.00000756}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
