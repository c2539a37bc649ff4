package bedrocksim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/deploy/cloudformation"
)

// Config describes the simulated models and guardrails and how time passes.
// Build one with DefaultConfig or LoadConfig; the zero value has no models.
type Config struct {
	// Minute is the length of the quota window. Bedrock's RPM and TPM quotas
	// count per minute; a shorter window (for example 6s) compresses time so a
	// benchmark sees many windows in a short run. Default 1m.
	Minute time.Duration `yaml:"minute"`
	// LatencyScale multiplies every simulated latency. 1 is real-time, 0.1 is
	// ten times faster, 0 removes latency entirely (unit tests, throughput
	// benchmarks). Default 1 in files and on the command line, 0 in Go code.
	LatencyScale float64 `yaml:"latency_scale"`
	// Seed makes jitter and fault injection repeatable. Default 1.
	Seed uint64 `yaml:"seed"`
	// Models by model or inference-profile ID, exactly as clients send it
	// (for example "us.anthropic.claude-haiku-4-5-20251001-v1:0").
	Models map[string]Model `yaml:"models"`
	// Guardrails by identifier.
	Guardrails map[string]Guardrail `yaml:"guardrails"`

	// Now and Sleep are the simulator's clock; tests inject fakes so quota
	// windows roll without sleeping. Defaults: time.Now and a context-aware sleep.
	Now   func() time.Time                           `yaml:"-"`
	Sleep func(ctx context.Context, d time.Duration) `yaml:"-"`
}

// Model is one simulated model or inference profile.
type Model struct {
	// ContextWindow is the most input tokens a request may carry.
	ContextWindow int `yaml:"context_window"`
	// MaxOutputTokens is the model's output limit; a larger maxTokens is a
	// ValidationException, and an unset maxTokens reserves this much quota.
	MaxOutputTokens int `yaml:"max_output_tokens"`
	// RPM and TPM are the per-window request and token quotas; 0 means unlimited.
	RPM int `yaml:"rpm"`
	TPM int `yaml:"tpm"`
	// OutputBurndown is how many quota tokens one output token costs at
	// settlement: 5 for Claude 4-class models, 1 for others. Billing is unaffected.
	OutputBurndown int `yaml:"output_burndown"`
	// Disabled makes every call fail with AccessDeniedException, as a model
	// whose access has not been granted in the account does.
	Disabled bool `yaml:"disabled"`
	// CacheMinTokens is the smallest prefix a cachePoint caches: 1,024 for
	// Claude Sonnet 4/4.5 and 3.7, 4,096 for Haiku 4.5 and Opus 4.5. A shorter
	// prefix is silently not cached, as on Bedrock. 0 disables prompt caching
	// for the model (cache points are still validated).
	CacheMinTokens int `yaml:"cache_min_tokens"`
	// CacheTTLs are the cachePoint ttl values the model accepts, of "5m" and
	// "1h"; any other is a ValidationException. Default ["5m"]. The 1-hour TTL
	// exists for Claude Sonnet 4.5, Haiku 4.5 and Opus 4.5. TTLs count in
	// simulated minutes (Config.Minute), like the quota window.
	CacheTTLs []string `yaml:"cache_ttls"`
	// StructuredOutputs says the model honours outputConfig.textFormat
	// (json_schema): the answer is then a JSON document valid against the
	// request's schema. Without it such a request is a ValidationException.
	// Default false; Claude Sonnet 4.5 and Haiku 4.5 have it.
	StructuredOutputs bool `yaml:"structured_outputs"`
	// ServiceTiers are the tiers besides "default" (Standard) the model
	// accepts in Converse's serviceTier: any of flex, priority and reserved.
	// Default none. Which models take which tier differs by provider and
	// account, so a user enables them here for the account being simulated.
	ServiceTiers []string `yaml:"service_tiers"`
	// Flex tunes the flex tier: slower, and the first throttled near the quota.
	Flex FlexTier `yaml:"flex"`
	// Priority tunes the priority tier: faster, full quota.
	Priority PriorityTier `yaml:"priority"`
	// ReservedTPM is the reserved tier's capacity in tokens per window
	// (input + maxTokens reserved, settled as the quota is). A reserved call
	// that fits is served from it without touching RPM and TPM; one that does
	// not overflows to the default tier and is answered as "default", as
	// Bedrock does. 0: no separate capacity, reserved calls share the quota.
	ReservedTPM int `yaml:"reserved_tpm"`
	// Latency is the model's speed before LatencyScale.
	Latency Latency `yaml:"latency"`
	// Faults are injected errors and latency spikes.
	Faults Faults `yaml:"faults"`
}

// FlexTier tunes the flex service tier. Bedrock shares a model's on-demand
// quota across tiers and serves flex at lower priority, so near the quota flex
// is what gets throttled first.
type FlexTier struct {
	// LatencyFactor multiplies a flex call's latency. 0 means the default, 2.
	LatencyFactor float64 `yaml:"latency_factor"`
	// QuotaShare is the fraction of the window's RPM and TPM flex calls may
	// take: a flex call that would push the window's use above QuotaShare ×
	// quota is throttled, while default and priority calls still get the
	// whole quota. Within (0,1]; 0 means the default, 0.8.
	QuotaShare float64 `yaml:"quota_share"`
}

// PriorityTier tunes the priority service tier ("up to 25% better output
// tokens per second"): same quota, faster answers.
type PriorityTier struct {
	// LatencyFactor multiplies a priority call's latency. 0 means the default, 0.8.
	LatencyFactor float64 `yaml:"latency_factor"`
}

// Defaults of the tier settings, applied where a field is 0.
const (
	defaultFlexLatencyFactor     = 2
	defaultFlexQuotaShare        = 0.8
	defaultPriorityLatencyFactor = 0.8
)

func (f FlexTier) latencyFactor() float64 {
	return orDefault(f.LatencyFactor, defaultFlexLatencyFactor)
}
func (f FlexTier) quotaShare() float64 { return orDefault(f.QuotaShare, defaultFlexQuotaShare) }
func (p PriorityTier) latencyFactor() float64 {
	return orDefault(p.LatencyFactor, defaultPriorityLatencyFactor)
}

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// Service tiers, as Converse's serviceTier.type spells them.
const (
	TierDefault  = "default"
	TierFlex     = "flex"
	TierPriority = "priority"
	TierReserved = "reserved"
)

var serviceTiers = []string{TierDefault, TierFlex, TierPriority, TierReserved}

// accepts reports whether the model takes a service tier; default always.
func (m Model) accepts(tier string) bool {
	return tier == TierDefault || slices.Contains(m.ServiceTiers, tier)
}

// Cache TTLs, as cachePoint.ttl spells them.
const (
	TTL5m = "5m"
	TTL1h = "1h"
)

// cacheTTLs returns the model's allowed cachePoint TTLs, defaulted.
func (m Model) cacheTTLs() []string {
	if len(m.CacheTTLs) == 0 {
		return []string{TTL5m}
	}
	return m.CacheTTLs
}

// Latency is time to first token plus time per output token, each multiplied by
// a factor drawn uniformly from [1-Jitter, 1+Jitter].
type Latency struct {
	FirstToken     time.Duration `yaml:"first_token"`
	PerOutputToken time.Duration `yaml:"per_output_token"`
	Jitter         float64       `yaml:"jitter"`
}

// Faults are the fractions of accepted calls that fail or stall on purpose.
// Each is in [0,1]; their sum must not exceed 1.
type Faults struct {
	InternalError      float64 `yaml:"internal_error"`      // 500 InternalServerException
	ServiceUnavailable float64 `yaml:"service_unavailable"` // 503 ServiceUnavailableException
	Timeout            float64 `yaml:"timeout"`             // 408 ModelTimeoutException
	NotReady           float64 `yaml:"not_ready"`           // 429 ModelNotReadyException
	// SpikeFraction of successful calls take Spike longer (before LatencyScale).
	SpikeFraction float64       `yaml:"spike_fraction"`
	Spike         time.Duration `yaml:"spike"`
}

func (f Faults) errorSum() float64 {
	return f.InternalError + f.ServiceUnavailable + f.Timeout + f.NotReady
}

// Guardrail is one simulated guardrail. Its policies mirror the Bedrock
// guardrail policies that tierq relies on.
type Guardrail struct {
	// Versions that exist, for example ["DRAFT", "1"]. Default ["DRAFT", "1"].
	Versions []string `yaml:"versions"`
	// BlockedInputMessage and BlockedOutputMessage replace blocked content.
	BlockedInputMessage  string `yaml:"blocked_input_message"`
	BlockedOutputMessage string `yaml:"blocked_output_message"`
	// PII lists the entity types detected and what happens to them.
	PII []PIIRule `yaml:"pii"`
	// Topics are denied topics, each recognised by keywords or phrases
	// (case-insensitive, whole words).
	Topics []Topic `yaml:"topics"`
	// Words are custom blocked words or phrases (word policy).
	Words []string `yaml:"words"`
	// PromptAttack enables the prompt-attack content filter on input.
	PromptAttack bool `yaml:"prompt_attack"`
}

// PIIRule is one sensitive-information entity type and its action.
type PIIRule struct {
	// Type is a Bedrock PII entity type. Detected here: EMAIL, PHONE,
	// US_SOCIAL_SECURITY_NUMBER, CREDIT_DEBIT_CARD_NUMBER, IP_ADDRESS,
	// AWS_ACCESS_KEY.
	Type string `yaml:"type"`
	// Action is ANONYMIZE (mask as {TYPE}) or BLOCK.
	Action string `yaml:"action"`
}

// Topic is a denied topic.
type Topic struct {
	Name     string   `yaml:"name"`
	Keywords []string `yaml:"keywords"`
}

// Built-in models. Quotas are the default cross-Region figures published in the
// AWS General Reference (snapshot of about 2025-06) where one exists, and an
// illustrative figure otherwise; output limits and context windows are the
// models' published ones. Latencies are illustrative. Every figure can be
// overridden by a config file: your account's quotas are in Service Quotas.
//
// Prompt caching: minimum prefix 1,024 tokens for Sonnet 4/4.5 and 3.7, 4,096
// for Haiku 4.5; the 1-hour TTL and structured outputs for Sonnet 4.5 and
// Haiku 4.5 only (Bedrock, 2026-01 and 2026-02). Nova caches implicitly, which
// the simulator does not model (cache_min_tokens 0).
//
// Service tiers: flex and priority launched for Nova Pro (and Premier, not
// built in), so Nova Pro takes them. Whether Nova Micro or Claude models take
// them is not settled (the rollout "varies by provider"), so they are off here:
// a user enables them in the sim config for their account, with
// service_tiers: [flex, priority]. Reserved is sold through the account team
// and is off everywhere.
func builtinModels() map[string]Model {
	nova := func(ctx, rpm, tpm int, first, per time.Duration) Model {
		return Model{ContextWindow: ctx, MaxOutputTokens: 5000, RPM: rpm, TPM: tpm, OutputBurndown: 1,
			Latency: Latency{FirstToken: first, PerOutputToken: per, Jitter: 0.2}}
	}
	claude := func(ctx, maxOut, rpm, tpm, burndown int, first, per time.Duration) Model {
		return Model{ContextWindow: ctx, MaxOutputTokens: maxOut, RPM: rpm, TPM: tpm, OutputBurndown: burndown,
			CacheMinTokens: 1024, Latency: Latency{FirstToken: first, PerOutputToken: per, Jitter: 0.2}}
	}
	// claude45 adds what the 4.5 generation has: the 1-hour cache TTL and
	// structured outputs, with its own minimum cacheable prefix.
	claude45 := func(m Model, cacheMin int) Model {
		m.CacheMinTokens = cacheMin
		m.CacheTTLs = []string{TTL5m, TTL1h}
		m.StructuredOutputs = true
		return m
	}
	novaPro := nova(300_000, 200, 800_000, 450*time.Millisecond, 8*time.Millisecond)
	novaPro.ServiceTiers = []string{TierFlex, TierPriority}
	return map[string]Model{
		"us.amazon.nova-micro-v1:0": nova(128_000, 2_000, 4_000_000, 250*time.Millisecond, 3*time.Millisecond),
		"us.amazon.nova-lite-v1:0":  nova(300_000, 2_000, 4_000_000, 300*time.Millisecond, 4*time.Millisecond),
		"us.amazon.nova-pro-v1:0":   novaPro,
		"us.anthropic.claude-3-7-sonnet-20250219-v1:0": claude(200_000, 8_192, 250, 1_000_000, 1,
			700*time.Millisecond, 15*time.Millisecond),
		"us.anthropic.claude-haiku-4-5-20251001-v1:0": claude45(claude(200_000, 64_000, 1_000, 5_000_000, 5,
			400*time.Millisecond, 6*time.Millisecond), 4096),
		"us.anthropic.claude-sonnet-4-20250514-v1:0": claude(200_000, 64_000, 200, 200_000, 5,
			800*time.Millisecond, 14*time.Millisecond),
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0": claude45(claude(200_000, 64_000, 200, 200_000, 5,
			800*time.Millisecond, 14*time.Millisecond), 1024),
	}
}

// DefaultGuardrailID is the built-in guardrail, matching tierq's default tiers.
const DefaultGuardrailID = "tierq-default"

// builtinGuardrails is tierq's guardrail as deploy/cloudformation/guardrail.yaml
// defines it, the definition the CloudFormation template deploys, under
// DefaultGuardrailID with versions DRAFT and 1 (a new stack's GuardrailVersion
// publishes version 1). The shipped definition is fully simulated
// (TestShippedGuardrailDefinitionIsSimulated), so nothing it asks for is
// missing here.
func builtinGuardrails() map[string]Guardrail {
	g, _, err := ParseGuardrailDefinition(cloudformation.GuardrailYAML)
	if err != nil {
		// The file is embedded at build time and tested; a broken one is a
		// bug in the build, not a condition to handle.
		panic("bedrocksim: deploy/cloudformation/guardrail.yaml: " + err.Error())
	}
	g.Versions = []string{"DRAFT", "1"}
	return map[string]Guardrail{DefaultGuardrailID: g}
}

// DefaultConfig returns the built-in models and guardrail with a one-minute
// quota window and no latency (LatencyScale 0), ready for tests.
func DefaultConfig() Config {
	return Config{
		Minute:     time.Minute,
		Seed:       1,
		Models:     builtinModels(),
		Guardrails: builtinGuardrails(),
	}
}

// fileConfig is the YAML form: models and guardrails override built-ins of the
// same ID field by field, and replace_builtins drops the built-ins first.
type fileConfig struct {
	Minute          time.Duration        `yaml:"minute"`
	LatencyScale    *float64             `yaml:"latency_scale"`
	Seed            uint64               `yaml:"seed"`
	ReplaceBuiltins bool                 `yaml:"replace_builtins"`
	Models          map[string]yaml.Node `yaml:"models"`
	Guardrails      map[string]yaml.Node `yaml:"guardrails"`
}

// LoadConfig reads a YAML configuration (see testdata/sim/example.yaml) on top
// of the built-in models and guardrail, and validates it. Unknown keys are an
// error, so a misspelt setting is never silently ignored.
func LoadConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	cfg.LatencyScale = 1
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse simulator config: %w", err)
	}
	if fc.Minute != 0 {
		cfg.Minute = fc.Minute
	}
	if fc.LatencyScale != nil {
		cfg.LatencyScale = *fc.LatencyScale
	}
	if fc.Seed != 0 {
		cfg.Seed = fc.Seed
	}
	if fc.ReplaceBuiltins {
		cfg.Models = map[string]Model{}
		cfg.Guardrails = map[string]Guardrail{}
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(fc.Models)) {
		node := fc.Models[id]
		m, ok := cfg.Models[id]
		if !ok {
			m = Model{OutputBurndown: 1}
		}
		if err := decodeStrict(&node, &m); err != nil {
			errs = append(errs, fmt.Errorf("models[%q]: %w", id, err))
			continue
		}
		cfg.Models[id] = m
	}
	for _, id := range slices.Sorted(maps.Keys(fc.Guardrails)) {
		node := fc.Guardrails[id]
		g := cfg.Guardrails[id]
		if err := decodeStrict(&node, &g); err != nil {
			errs = append(errs, fmt.Errorf("guardrails[%q]: %w", id, err))
			continue
		}
		cfg.Guardrails[id] = g
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

func decodeStrict(node *yaml.Node, out any) error {
	// Node.Decode has no KnownFields switch, so round-trip through a decoder.
	raw, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	return dec.Decode(out)
}

var piiTypes = map[string]bool{
	"EMAIL": true, "PHONE": true, "US_SOCIAL_SECURITY_NUMBER": true,
	"CREDIT_DEBIT_CARD_NUMBER": true, "IP_ADDRESS": true, "AWS_ACCESS_KEY": true,
}

// Validate reports every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Minute <= 0 {
		bad("minute: must be positive, got %s", c.Minute)
	}
	if c.LatencyScale < 0 {
		bad("latency_scale: must be 0 or more, got %g", c.LatencyScale)
	}
	if len(c.Models) == 0 {
		bad("models: at least one model is required")
	}
	for _, id := range slices.Sorted(maps.Keys(c.Models)) {
		m := c.Models[id]
		p := fmt.Sprintf("models[%q]", id)
		if strings.TrimSpace(id) == "" {
			bad("models: empty model ID")
		}
		if m.ContextWindow <= 0 {
			bad("%s.context_window: must be positive, got %d", p, m.ContextWindow)
		}
		if m.MaxOutputTokens <= 0 {
			bad("%s.max_output_tokens: must be positive, got %d", p, m.MaxOutputTokens)
		}
		if m.RPM < 0 || m.TPM < 0 {
			bad("%s: rpm and tpm must be 0 (unlimited) or more", p)
		}
		if m.OutputBurndown < 1 {
			bad("%s.output_burndown: must be at least 1, got %d", p, m.OutputBurndown)
		}
		if m.CacheMinTokens < 0 {
			bad("%s.cache_min_tokens: must be 0 or more", p)
		}
		checkList(bad, p+".cache_ttls", m.CacheTTLs, []string{TTL5m, TTL1h})
		checkList(bad, p+".service_tiers", m.ServiceTiers, serviceTiers)
		if f := m.Flex.LatencyFactor; f < 0 {
			bad("%s.flex.latency_factor: must be positive (0 for the default %g), got %g", p, float64(defaultFlexLatencyFactor), f)
		}
		if q := m.Flex.QuotaShare; q < 0 || q > 1 {
			bad("%s.flex.quota_share: must be within (0,1] (0 for the default %g), got %g", p, defaultFlexQuotaShare, q)
		}
		if f := m.Priority.LatencyFactor; f < 0 {
			bad("%s.priority.latency_factor: must be positive (0 for the default %g), got %g", p, defaultPriorityLatencyFactor, f)
		}
		if m.ReservedTPM < 0 {
			bad("%s.reserved_tpm: must be 0 (no separate capacity) or more, got %d", p, m.ReservedTPM)
		}
		if m.ReservedTPM > 0 && !slices.Contains(m.ServiceTiers, TierReserved) {
			bad("%s.reserved_tpm: set, but reserved is not in service_tiers", p)
		}
		if m.Latency.FirstToken < 0 || m.Latency.PerOutputToken < 0 || m.Latency.Jitter < 0 || m.Latency.Jitter > 1 {
			bad("%s.latency: durations must be 0 or more and jitter within [0,1]", p)
		}
		errs = append(errs, m.Faults.validate(p+".faults"))
	}
	for _, id := range slices.Sorted(maps.Keys(c.Guardrails)) {
		g := c.Guardrails[id]
		p := fmt.Sprintf("guardrails[%q]", id)
		if len(g.Versions) == 0 {
			bad("%s.versions: at least one version (for example DRAFT or 1) is required", p)
		}
		for i, r := range g.PII {
			if !piiTypes[r.Type] {
				bad("%s.pii[%d].type: %q is not detected by the simulator (one of %s)", p, i, r.Type,
					strings.Join(slices.Sorted(maps.Keys(piiTypes)), ", "))
			}
			if r.Action != "ANONYMIZE" && r.Action != "BLOCK" {
				bad("%s.pii[%d].action: must be ANONYMIZE or BLOCK, got %q", p, i, r.Action)
			}
		}
		for i, t := range g.Topics {
			if t.Name == "" || len(t.Keywords) == 0 {
				bad("%s.topics[%d]: a topic needs a name and at least one keyword", p, i)
			}
		}
	}
	return errors.Join(errs...)
}

// checkList reports values of list that are not among known, and repeats.
func checkList(bad func(string, ...any), path string, list, known []string) {
	seen := map[string]bool{}
	for i, v := range list {
		if !slices.Contains(known, v) {
			bad("%s[%d]: %q is not one of %s", path, i, v, strings.Join(known, ", "))
		}
		if seen[v] {
			bad("%s[%d]: %q is listed twice", path, i, v)
		}
		seen[v] = true
	}
}

func (f Faults) validate(path string) error {
	var errs []error
	for _, fr := range []struct {
		name string
		v    float64
	}{{"internal_error", f.InternalError}, {"service_unavailable", f.ServiceUnavailable},
		{"timeout", f.Timeout}, {"not_ready", f.NotReady}, {"spike_fraction", f.SpikeFraction}} {
		if fr.v < 0 || fr.v > 1 {
			errs = append(errs, fmt.Errorf("%s.%s: must be within [0,1], got %g", path, fr.name, fr.v))
		}
	}
	if f.errorSum() > 1 {
		errs = append(errs, fmt.Errorf("%s: error fractions add up to %g, more than 1", path, f.errorSum()))
	}
	if f.Spike < 0 {
		errs = append(errs, fmt.Errorf("%s.spike: must be 0 or more", path))
	}
	return errors.Join(errs...)
}
