package tiering_test

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/tiering"
)

// oneTier is the smallest valid configuration.
const oneTier = `
tiers:
  - name: only
    model_id: m
    context_window: 1000
    max_output_tokens: 100
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 1, output_per_mtok: 2}
`

func TestDefault(t *testing.T) {
	t.Parallel()
	c := tiering.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
	want := []struct {
		name, model string
		in, out     float64
	}{
		{"economy", "us.amazon.nova-micro-v1:0", 0.035, 0.14},
		// Regional (us.) profiles at the regional list price, 10% above global.
		{"standard", "us.anthropic.claude-haiku-4-5-20251001-v1:0", 1.10, 5.50},
		{"premium", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.30, 16.50},
	}
	if len(c.Tiers) != len(want) {
		t.Fatalf("Default() has %d tiers, want %d", len(c.Tiers), len(want))
	}
	for i, w := range want {
		got := c.Tiers[i]
		if got.Name != w.name || got.ModelID != w.model || got.Prices.InputPerMTok != w.in || got.Prices.OutputPerMTok != w.out {
			t.Errorf("tier %d = %s %s %v/%v, want %s %s %v/%v", i, got.Name, got.ModelID,
				got.Prices.InputPerMTok, got.Prices.OutputPerMTok, w.name, w.model, w.in, w.out)
		}
		if got.Guardrail != (tiering.GuardrailRef{ID: "tierq-default", Version: "1"}) {
			t.Errorf("tier %s guardrail = %+v, want tierq-default version 1", got.Name, got.Guardrail)
		}
		for _, task := range []string{tiering.TaskSummarize, tiering.TaskClassify, tiering.TaskExtract, tiering.TaskCustom} {
			if got.SystemPrompt(task) == "" {
				t.Errorf("tier %s has no system prompt for %s", got.Name, task)
			}
		}
	}
	if want := tiering.DefaultEscalation(); c.Escalation != want {
		t.Errorf("Default().Escalation = %+v, want %+v", c.Escalation, want)
	}

	// Default hands out copies: changing one must not change the next.
	c.Tiers[0].Name = "changed"
	if tiering.Default().Tiers[0].Name != "economy" {
		t.Error("Default() returned shared state")
	}
	if !bytes.Contains(tiering.DefaultYAML(), []byte("2026-11-24")) {
		t.Error("DefaultYAML() lacks the date its prices were taken")
	}
}

func TestLoadAppliesDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want tiering.Escalation
	}{
		{"escalation omitted", oneTier, tiering.DefaultEscalation()},
		{"only max_steps", oneTier + "escalation: {max_steps: 3}\n",
			tiering.Escalation{Enabled: true, OnMaxTokens: true, OnInvalidJSON: true, MaxSteps: 3}},
		{"disabled", oneTier + "escalation: {enabled: false}\n",
			tiering.Escalation{Enabled: false, OnMaxTokens: true, OnInvalidJSON: true, MaxSteps: 1}},
		{"max_steps 0 means default", oneTier + "escalation: {max_steps: 0, on_invalid_json: false}\n",
			tiering.Escalation{Enabled: true, OnMaxTokens: true, OnInvalidJSON: false, MaxSteps: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tiering.Load([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Escalation != tt.want {
				t.Errorf("Escalation = %+v, want %+v", c.Escalation, tt.want)
			}
			want := tiering.Rules{EconomyMaxTokens: 2000, StandardMaxTokens: 20000, ClassifyEconomyMaxTokens: 8000,
				DenseDigitsShare: 0.20, NonASCIIShare: 0.30}
			if c.Rules != want {
				t.Errorf("Rules = %+v, want %+v", c.Rules, want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"unknown top-level field", oneTier + "tier: x\n", "field tier not found"},
		{"unknown tier field", strings.Replace(oneTier, "model_id:", "modelid:", 1), "field modelid not found"},
		{"unknown price field", strings.Replace(oneTier, "input_per_mtok", "input_per_1m", 1), "field input_per_1m not found"},
		{"unknown escalation field", oneTier + "escalation: {on_timeout: true}\n", "field on_timeout not found"},
		{"unknown rules field", oneTier + "rules: {economy_max: 10}\n", "field economy_max not found"},
		{"wrong type", strings.Replace(oneTier, "1000", "big", 1), "cannot unmarshal"},
		{"empty", "", "empty document"},
		{"two documents", oneTier + "---\n" + oneTier, "more than one YAML document"},
		{"invalid", strings.Replace(oneTier, "model_id: m", "model_id: ''", 1), "tiers[0].model_id: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tiering.Load([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := &tiering.Config{
		Tiers: []tiering.Tier{
			{
				Name: "cheap", ModelID: "m1", ContextWindow: 1000, MaxOutputTokens: 100,
				SystemPrompts: map[string]string{"default": "x"},
				Prices:        tiering.Prices{InputPerMTok: 1, OutputPerMTok: 2},
			},
			{
				Name: "cheap", ContextWindow: 0, MaxOutputTokens: 0, Temperature: 1.5,
				SystemPrompts: map[string]string{"summarize": "s", "summarise": "typo", "classify": " "},
				Guardrail:     tiering.GuardrailRef{ID: "g"},
				Prices:        tiering.Prices{CacheReadPerMTok: -1},
			},
			{
				Name: "", ModelID: "m3", ContextWindow: 100, MaxOutputTokens: 100,
				SystemPrompts: map[string]string{"default": "x"},
				Prices:        tiering.Prices{InputPerMTok: 1},
			},
		},
		Escalation: tiering.Escalation{MaxSteps: -1},
		Rules:      tiering.Rules{EconomyMaxTokens: 500, StandardMaxTokens: 100, ClassifyEconomyMaxTokens: 1, DenseDigitsShare: 2, NonASCIIShare: 0.3},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want every problem")
	}
	want := []string{
		`tiers[1].name: duplicate "cheap" (also tiers[0])`,
		"tiers[1].model_id: required",
		"tiers[1].context_window: must be positive (got 0)",
		"tiers[1].max_output_tokens: must be positive (got 0)",
		"tiers[1].temperature: must be between 0 and 1 (got 1.5)",
		"tiers[1].system_prompts.summarise: unknown task",
		"tiers[1].system_prompts.classify: empty prompt",
		"tiers[1].system_prompts.extract: required",
		"tiers[1].system_prompts.custom: required",
		"tiers[1].guardrail: id and version must be set together",
		"tiers[1].prices.cache_read_per_mtok: must be a finite number >= 0 (got -1)",
		"tiers[1].prices.input_per_mtok and tiers[1].prices.output_per_mtok: missing; supply the model's on-demand price",
		"tiers[2].name: required",
		"tiers[2].max_output_tokens: 100 leaves no room for input in context_window 100",
		"tiers[2].prices.output_per_mtok: missing; supply the model's on-demand price",
		"escalation.max_steps: must be at least 1 (got -1)",
		"rules.standard_max_tokens: 100 is below rules.economy_max_tokens 500",
		"rules.dense_digits_share: must be in (0, 1] (got 2)",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("Validate() error lacks %q", w)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != len(want) {
		t.Errorf("Validate() reported %d problems, want %d:\n%s", n, len(want), got)
	}
}

func TestValidateNoTiers(t *testing.T) {
	t.Parallel()
	c := &tiering.Config{Escalation: tiering.DefaultEscalation()}
	c.ApplyDefaults()
	err := c.Validate()
	if err == nil || err.Error() != "tiers: at least one tier is required" {
		t.Errorf("Validate() = %v, want only the missing-tiers problem", err)
	}
}

func TestTierLookup(t *testing.T) {
	t.Parallel()
	c := tiering.Default()
	if got, ok := c.Tier("standard"); !ok || got.ModelID != "us.anthropic.claude-haiku-4-5-20251001-v1:0" {
		t.Errorf(`Tier("standard") = %q, %v; want Haiku, true`, got.ModelID, ok)
	}
	if _, ok := c.Tier("gold"); ok {
		t.Error(`Tier("gold") found a tier, want none`)
	}
	tier := tiering.Tier{SystemPrompts: map[string]string{"extract": "E", "default": "D"}}
	if got := tier.SystemPrompt("extract"); got != "E" {
		t.Errorf(`SystemPrompt("extract") = %q, want "E"`, got)
	}
	if got := tier.SystemPrompt("summarize"); got != "D" {
		t.Errorf(`SystemPrompt("summarize") = %q, want the default "D"`, got)
	}
}

func TestProvisioned(t *testing.T) {
	t.Parallel()
	c, err := tiering.Load([]byte(oneTier + `
provisioned:
  m:
    input_tokens_per_minute_per_unit: 25000
    output_tokens_per_minute_per_unit: 5000
    hourly_price_per_unit: {no_commitment: 0.6, six_months: 0.35}
  other:
    on_demand: {input_per_mtok: 0.2, output_per_mtok: 0.6}
`))
	if err != nil {
		t.Fatalf("Load = %v, want nil", err)
	}
	p := c.Provisioned["m"]
	if p.InputTokensPerMinutePerUnit != 25000 || p.OutputTokensPerMinutePerUnit != 5000 || p.TokensPerMinutePerUnit != 0 {
		t.Errorf("provisioned[m] throughput = %+v, want 25000 in, 5000 out, no total", p)
	}
	for term, want := range map[tiering.Term]float64{tiering.TermNoCommitment: 0.6, tiering.TermOneMonth: 0, tiering.TermSixMonths: 0.35, "ten_years": 0} {
		if got := p.HourlyPricePerUnit.Price(term); got != want {
			t.Errorf("Price(%s) = %v, want %v", term, got, want)
		}
	}
	if got, ok := c.ModelPrices("m"); !ok || got.InputPerMTok != 1 {
		t.Errorf(`ModelPrices("m") = %+v, %v; want the tier's prices`, got, ok)
	}
	if got, ok := c.ModelPrices("other"); !ok || got.OutputPerMTok != 0.6 {
		t.Errorf(`ModelPrices("other") = %+v, %v; want provisioned on_demand prices`, got, ok)
	}
	if _, ok := c.ModelPrices("unpriced"); ok {
		t.Error(`ModelPrices("unpriced") found prices, want none`)
	}
	if got := tiering.Terms(); len(got) != 3 || got[0] != tiering.TermNoCommitment || got[2] != tiering.TermSixMonths {
		t.Errorf("Terms() = %v, want no_commitment, one_month, six_months", got)
	}
}

func TestProvisionedOptional(t *testing.T) {
	t.Parallel()
	// The shipped default only carries a commented example, and a file
	// without the section must load: sizing is an optional feature.
	if p := tiering.Default().Provisioned; len(p) != 0 {
		t.Errorf("Default().Provisioned = %v, want none (the example is commented out)", p)
	}
	if !bytes.Contains(tiering.DefaultYAML(), []byte("AWS DOES NOT PUBLISH")) {
		t.Error("default.yaml lacks the note that AWS does not publish per-unit throughput")
	}
	// An entry with prices but no throughput is valid: sizing names the gap.
	if _, err := tiering.Load([]byte(oneTier + "provisioned: {m: {hourly_price_per_unit: {one_month: 1}}}\n")); err != nil {
		t.Errorf("Load with prices only = %v, want nil", err)
	}
}

func TestProvisionedRejects(t *testing.T) {
	t.Parallel()
	_, err := tiering.Load([]byte(oneTier + `
provisioned:
  m:
    input_tokens_per_minute_per_unit: -1
    tokens_per_minute_per_unit: .inf
    hourly_price_per_unit: {one_month: -2}
    on_demand: {input_per_mtok: 1, output_per_mtok: 1}
  x:
    on_demand: {input_per_mtok: 1}
  "":
    output_tokens_per_minute_per_unit: 1
`))
	if err == nil {
		t.Fatal("Load = nil, want every provisioned problem")
	}
	want := []string{
		"provisioned: empty model ID",
		`provisioned["m"].input_tokens_per_minute_per_unit: must be a finite number >= 0 (got -1)`,
		`provisioned["m"].tokens_per_minute_per_unit: must be a finite number >= 0 (got +Inf)`,
		`provisioned["m"].hourly_price_per_unit.one_month: must be a finite number >= 0 (got -2)`,
		`provisioned["m"].on_demand: tiers[0] (only) already prices this model; remove one of the two`,
		`provisioned["x"].on_demand.output_per_mtok: missing`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("Load error lacks %q:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "\n"); n != len(want) { // +1 line for the "invalid tiering config:" header
		t.Errorf("Load reported %d problems, want %d:\n%s", n, len(want), got)
	}
}

func TestSpillover(t *testing.T) {
	t.Parallel()
	const fallback = "\n    fallback_model_id: m-global\n"
	tests := []struct {
		name         string
		yaml         string
		wantFallback string
		wantAfter    time.Duration
	}{
		{"off by default", oneTier, "", 0},
		{"fallback alone waits the default", oneTier + fallback, "m-global", tiering.DefaultSpilloverAfter},
		{"duration string", oneTier + fallback + "    spillover_after: 1m30s\n", "m-global", 90 * time.Second},
		{"0s means the default", oneTier + fallback + "    spillover_after: 0s\n", "m-global", tiering.DefaultSpilloverAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tiering.Load([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := c.Tiers[0]
			if got.FallbackModelID != tt.wantFallback || got.SpilloverAfter != tt.wantAfter || got.HasFallback() != (tt.wantFallback != "") {
				t.Errorf("fallback %q after %s (HasFallback %v), want %q after %s",
					got.FallbackModelID, got.SpilloverAfter, got.HasFallback(), tt.wantFallback, tt.wantAfter)
			}
			if tt.wantFallback == "" {
				return
			}
			// The fallback answers at its tier's prices, and sizing prices it so.
			if p, ok := c.ModelPrices(tt.wantFallback); !ok || !reflect.DeepEqual(p, got.Prices) {
				t.Errorf("ModelPrices(%q) = %+v, %v; want the tier's prices", tt.wantFallback, p, ok)
			}
		})
	}
}

// The shipped file documents spillover as a commented example: off by
// default, and valid once uncommented.
func TestDefaultSpilloverExample(t *testing.T) {
	t.Parallel()
	for _, tier := range tiering.Default().Tiers {
		if tier.HasFallback() || tier.SpilloverAfter != 0 {
			t.Errorf("tier %s spills over to %q by default, want spillover off", tier.Name, tier.FallbackModelID)
		}
	}
	y := string(tiering.DefaultYAML())
	const fb, after = "    # fallback_model_id: ", "    # spillover_after: 30s\n"
	if !strings.Contains(y, fb) || !strings.Contains(y, after) {
		t.Fatal("default.yaml lacks the commented spillover example")
	}
	// Uncomment the example: from fallback_model_id to the end of its
	// comment block.
	lines := strings.Split(y, "\n")
	for i, on := range lines {
		if !strings.HasPrefix(on, fb) {
			continue
		}
		for j := i; j < len(lines) && strings.HasPrefix(lines[j], "    # "); j++ {
			lines[j] = "    " + strings.TrimPrefix(lines[j], "    # ")
		}
		break
	}
	y = strings.Join(lines, "\n")
	c, err := tiering.Load([]byte(y))
	if err != nil {
		t.Fatalf("default.yaml with the spillover example uncommented: %v", err)
	}
	premium, _ := c.Tier("premium")
	if premium.FallbackModelID != "global.anthropic.claude-sonnet-4-5-20250929-v1:0" || premium.SpilloverAfter != 30*time.Second {
		t.Errorf("premium spills over to %q after %s, want the global Sonnet 4.5 profile after 30s", premium.FallbackModelID, premium.SpilloverAfter)
	}
	// The global profile is priced at its own, lower, list price.
	if p, ok := c.ModelPrices(premium.FallbackModelID); !ok || p.InputPerMTok != 3.00 || p.OutputPerMTok != 15.00 {
		t.Errorf("ModelPrices(global Sonnet) = %v/%v, want 3.00/15.00", p.InputPerMTok, p.OutputPerMTok)
	}
}

func TestSpilloverRejects(t *testing.T) {
	t.Parallel()
	const two = oneTier + `  - name: other
    model_id: m2
    context_window: 1000
    max_output_tokens: 100
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 1, output_per_mtok: 2}
`
	tier0 := func(lines string) string {
		return strings.Replace(two, "    model_id: m\n", "    model_id: m\n"+lines, 1)
	}
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"fallback is the tier's model", tier0("    fallback_model_id: m\n"),
			`tiers[0].fallback_model_id: "m" is the tier's own model_id`},
		{"fallback is another tier's model", tier0("    fallback_model_id: m2\n"),
			`tiers[0].fallback_model_id: "m2" is tiers[1] (other)'s model_id`},
		{"fallback with spaces", tier0("    fallback_model_id: ' m-global'\n"),
			`tiers[0].fallback_model_id: " m-global" has leading or trailing spaces`},
		{"negative delay", tier0("    fallback_model_id: m-global\n    spillover_after: -5s\n"),
			"tiers[0].spillover_after: must not be negative (got -5s)"},
		{"delay without a fallback", tier0("    spillover_after: 10s\n"),
			"tiers[0].spillover_after: set, but fallback_model_id is empty"},
		{"delay without a unit", tier0("    fallback_model_id: m-global\n    spillover_after: 30\n"),
			"cannot unmarshal !!int `30` into time.Duration"},
		{"fallback priced twice", tier0("    fallback_model_id: m-global\n") + "provisioned: {m-global: {on_demand: {input_per_mtok: 1, output_per_mtok: 1}}}\n",
			`provisioned["m-global"].on_demand: tiers[0] (only) already prices this model as its fallback`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantOneLoadError(t, tt.yaml, tt.wantErr)
		})
	}
}

// A tier must have a name that a job can ask for in tier_override or
// tier_hint (the job schema's pattern).
func TestValidateTierName(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"economy": true, "tier-2.b_x": true, "9lives": true,
		"premium tier": false, "-dash": false, ".dot": false, "ünï": false, strings.Repeat("a", 65): false,
	} {
		c := tiering.Default()
		c.Tiers[0].Name = name
		err := c.Validate()
		if got := err == nil; got != ok {
			t.Errorf("tier name %q: Validate() = %v, want ok=%v", name, err, ok)
		}
	}
}

// Service tiers, prompt caching and fallback prices: each call must be
// priced at what it is billed, so a setting without its price is an error.
func TestCallFeatureRejects(t *testing.T) {
	t.Parallel()
	with := func(lines string) string {
		return strings.Replace(oneTier, "    model_id: m\n", "    model_id: m\n"+lines, 1)
	}
	withPrices := func(tierLines, priceLines string) string {
		y := with(tierLines)
		return strings.Replace(y, "prices: {input_per_mtok: 1, output_per_mtok: 2}",
			"prices:\n      input_per_mtok: 1\n      output_per_mtok: 2\n"+priceLines, 1)
	}
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"unknown service tier", with("    service_tier: cheap\n"),
			`tiers[0].service_tier: unknown "cheap" (want default, flex, priority, reserved)`},
		{"flex without flex prices", with("    service_tier: flex\n"),
			"tiers[0].prices.service_tiers.flex: required to price calls at service_tier flex"},
		{"flex priced without output", withPrices("    service_tier: flex\n", "      service_tiers: {flex: {input_per_mtok: 0.5}}\n"),
			"tiers[0].prices.service_tiers.flex: input_per_mtok and output_per_mtok are required"},
		{"a price for an unknown service tier", withPrices("", "      service_tiers: {turbo: {input_per_mtok: 1, output_per_mtok: 1}}\n"),
			"tiers[0].prices.service_tiers.turbo: unknown service tier"},
		{"default priced twice", withPrices("", "      service_tiers: {default: {input_per_mtok: 1, output_per_mtok: 1}}\n"),
			"tiers[0].prices.service_tiers.default: unknown service tier"},
		{"negative flex price", withPrices("", "      service_tiers: {flex: {input_per_mtok: -1, output_per_mtok: 1}}\n"),
			"tiers[0].prices.service_tiers.flex.input_per_mtok: must be a finite number >= 0"},
		{"cache ttl Bedrock does not take", with("    prompt_cache: {min_tokens: 1024, ttl: 10m}\n"),
			`tiers[0].prompt_cache.ttl: "10m" is not a cache TTL Bedrock takes`},
		{"cache ttl with caching off", with("    prompt_cache: {ttl: 5m}\n"),
			"tiers[0].prompt_cache.ttl: set, but min_tokens is 0"},
		{"negative cache minimum", with("    prompt_cache: {min_tokens: -1}\n"),
			"tiers[0].prompt_cache.min_tokens: must not be negative"},
		{"caching without cache prices", withPrices("    prompt_cache: {min_tokens: 1024}\n", "      cache_read_per_mtok: 0.1\n"),
			"tiers[0].prices.cache_write_per_mtok: required with prompt_cache"},
		{"1h caching without the 1h price", withPrices("    prompt_cache: {min_tokens: 1024, ttl: 1h}\n", "      cache_read_per_mtok: 0.1\n      cache_write_per_mtok: 1.25\n"),
			"tiers[0].prices.cache_write_1h_per_mtok: required with prompt_cache.ttl 1h"},
		{"flex caching without flex cache prices", withPrices("    service_tier: flex\n    prompt_cache: {min_tokens: 1024}\n",
			"      cache_read_per_mtok: 0.1\n      cache_write_per_mtok: 1.25\n      service_tiers: {flex: {input_per_mtok: 0.5, output_per_mtok: 1, cache_write_per_mtok: 0.6}}\n"),
			"tiers[0].prices.service_tiers.flex.cache_read_per_mtok: required with prompt_cache"},
		{"global fallback of a regional model without its prices", with("    fallback_model_id: global.m\n"),
			`tiers[0].fallback_prices: required, because fallback_model_id "global.m" and model_id "m" differ in scope`},
		{"fallback prices without a fallback", with("    fallback_prices: {input_per_mtok: 1, output_per_mtok: 1}\n"),
			"tiers[0].fallback_prices: set, but fallback_model_id is empty"},
		{"fallback prices missing output", with("    fallback_model_id: global.m\n    fallback_prices: {input_per_mtok: 1}\n"),
			"tiers[0].fallback_prices.output_per_mtok: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantOneLoadError(t, tt.yaml, tt.wantErr)
		})
	}
	// The same settings, priced, are valid.
	ok := withPrices("    service_tier: flex\n    prompt_cache: {min_tokens: 1024, ttl: 1h}\n    structured_outputs: true\n",
		"      cache_read_per_mtok: 0.1\n      cache_write_1h_per_mtok: 2\n"+
			"      service_tiers: {flex: {input_per_mtok: 0.5, output_per_mtok: 1, cache_read_per_mtok: 0.05, cache_write_1h_per_mtok: 1}, reserved: {}}\n")
	c, err := tiering.Load([]byte(ok))
	if err != nil {
		t.Fatalf("priced features: %v", err)
	}
	if tr := c.Tiers[0]; tr.RequestedServiceTier() != "flex" || !tr.StructuredOutputs || tr.PromptCache.TTL != "1h" {
		t.Errorf("loaded %+v", tr)
	}
}

// testdata/tiering/flex-cache.yaml is the example README points to for
// measuring flex and caching: it must load, ask for flex on standard and
// premium, and cache the long extract and custom prompts on both.
func TestFlexCacheExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../testdata/tiering/flex-cache.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tiering.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"standard", "premium"} {
		tier, _ := c.Tier(name)
		if tier.RequestedServiceTier() != tiering.ServiceTierFlex {
			t.Errorf("%s asks for service tier %q, want flex", name, tier.ServiceTier)
		}
		for _, task := range []string{tiering.TaskExtract, tiering.TaskCustom} {
			if tiering.CachedPrefixTokens(tier, task) == 0 {
				t.Errorf("%s does not cache its %s prompt", name, task)
			}
		}
		if tiering.CachedPrefixTokens(tier, tiering.TaskSummarize) != 0 {
			t.Errorf("%s caches its short summarize prompt", name)
		}
	}
}

// wantOneLoadError checks that Load refuses a file with exactly one
// problem, reported as wantErr says.
func wantOneLoadError(t *testing.T, yaml, wantErr string) {
	t.Helper()
	_, err := tiering.Load([]byte(yaml))
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("Load error = %v, want one containing %q", err, wantErr)
	}
	if n := strings.Count(err.Error(), "\n"); n > 1 {
		t.Errorf("Load reported %d problems, want only this one:\n%v", n, err)
	}
}

// The shipped file's commented provisioned example (model units, the
// Reserved tier, quota figures) loads once uncommented.
func TestDefaultProvisionedExample(t *testing.T) {
	t.Parallel()
	y := string(tiering.DefaultYAML())
	i := strings.Index(y, "\n# provisioned:\n")
	if i < 0 {
		t.Fatal("default.yaml lacks the commented provisioned example")
	}
	lines := strings.Split(y[i+1:], "\n")
	for j, l := range lines {
		lines[j] = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
	}
	c, err := tiering.Load([]byte(y[:i+1] + strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("default.yaml with the provisioned example uncommented: %v", err)
	}
	pr, ok := c.Provisioned["us.anthropic.claude-sonnet-4-5-20250929-v1:0"]
	if !ok || pr.Reserved == nil || pr.Quota.OutputBurndown != 5 {
		t.Errorf("provisioned Sonnet 4.5 = %+v, want a reserved block and output burndown 5", pr)
	}
}
