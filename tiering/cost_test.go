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
	sonnetUS := tiering.Prices{InputPerMTok: 3.30, OutputPerMTok: 16.50, CacheReadPerMTok: 0.33, CacheWritePerMTok: 4.125, CacheWrite1hPerMTok: 6.60}
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
		// Writes by TTL on regional Sonnet 4.5 ($3.30 in, 1.25× = $4.125 for
		// 5 minutes, 2× = $6.60 for 1 hour): 3,000 written, 1,000 of them for
		// 1 hour. 2,000 × 4.125 / 1e6 = 0.00825; 1,000 × 6.60 / 1e6 = 0.0066.
		// Reads: 5,000 × 0.33 / 1e6 = 0.00165. Input 700 × 3.30 / 1e6 =
		// 0.00231. Output 300 × 16.50 / 1e6 = 0.00495.
		// Total 0.00231 + 0.00165 + 0.01485 + 0.00495 = 0.02376.
		{"cache writes by TTL on regional Sonnet", sonnetUS, tiering.Usage{InputTokens: 700, OutputTokens: 300,
			CacheReadTokens: 5_000, CacheWriteTokens: 3_000, CacheWrite1hTokens: 1_000},
			tiering.Cost{InputUSD: 0.00231, OutputUSD: 0.00495, CacheReadUSD: 0.00165, CacheWriteUSD: 0.01485, TotalUSD: 0.02376}},
		// Every write for 1 hour: 2,000 × 6.60 / 1e6 = 0.0132, nothing at the 5-minute price.
		{"all writes for 1 hour", sonnetUS, tiering.Usage{CacheWriteTokens: 2_000, CacheWrite1hTokens: 2_000},
			tiering.Cost{CacheWriteUSD: 0.0132, TotalUSD: 0.0132}},
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

// A call is priced at the model and service tier that served it: the
// tier's model or its fallback (a global. profile, priced apart), at
// default or at the service tier's own token prices.
func TestCallPrices(t *testing.T) {
	t.Parallel()
	c, err := tiering.Load([]byte(`tiers:
  - name: premium
    model_id: us.m
    context_window: 1000
    max_output_tokens: 100
    system_prompts: {default: "Do the task."}
    service_tier: flex
    prices:
      input_per_mtok: 3.30
      output_per_mtok: 16.50
      guardrail: {content_per_1k: 0.15}
      service_tiers:
        flex: {input_per_mtok: 1.65, output_per_mtok: 8.25}
    fallback_model_id: global.m
    fallback_prices:
      input_per_mtok: 3.00
      output_per_mtok: 15.00
      guardrail: {content_per_1k: 0.15}
      service_tiers:
        flex: {input_per_mtok: 1.50, output_per_mtok: 7.50}
`))
	if err != nil {
		t.Fatal(err)
	}
	tier := c.Tiers[0]
	// 10,000 in, 1,000 out, 2 content units (0.0003 USD of guardrail).
	u := tiering.Usage{InputTokens: 10_000, OutputTokens: 1_000, GuardrailUnits: tiering.GuardrailUnits{Content: 2}}
	tests := []struct {
		model, served string
		priced        bool
		want          float64
	}{
		// 10,000 × 3.30 + 1,000 × 16.50 = 33,000 + 16,500 µ$ = 0.0495, + 0.0003.
		{"us.m", "default", true, 0.0498},
		{"us.m", "", true, 0.0498},
		// 10,000 × 1.65 + 1,000 × 8.25 = 0.02475, + 0.0003.
		{"us.m", "flex", true, 0.02505},
		// 10,000 × 3.00 + 1,000 × 15.00 = 0.045, + 0.0003.
		{"global.m", "default", true, 0.0453},
		// 10,000 × 1.50 + 1,000 × 7.50 = 0.0225, + 0.0003.
		{"global.m", "flex", true, 0.0228},
		// Served at a tier nobody priced: default prices, and ok says so.
		{"us.m", "priority", false, 0.0498},
	}
	for _, tt := range tests {
		p, ok := tier.CallPrices(tt.model, tt.served)
		if got := p.Cost(u).TotalUSD; ok != tt.priced || !near(got, tt.want) {
			t.Errorf("CallPrices(%s, %q).Cost = %v (priced %v), want %v (priced %v)", tt.model, tt.served, got, ok, tt.want, tt.priced)
		}
	}
}
