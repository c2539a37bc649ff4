package tiering

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// Config is the tiering configuration: the tiers with their models and
// prices, when to escalate, and the classification thresholds.
type Config struct {
	// Tiers are ordered cheapest to most capable. Classification and
	// escalation rely on that order; it is not checked, because price alone
	// does not say which model is more capable.
	Tiers      []Tier     `yaml:"tiers"`
	Escalation Escalation `yaml:"escalation"`
	Rules      Rules      `yaml:"rules"`
	// Provisioned holds provisioned-throughput figures by model ID, for
	// sizing only; the worker never reads it. Optional: without it sizing
	// reports on-demand costs and names the figures it needs.
	Provisioned map[string]Provisioned `yaml:"provisioned"`
}

// Tier is one model with the settings and prices tierq uses for it.
type Tier struct {
	Name string `yaml:"name"`
	// ModelID is the Bedrock model or cross-region inference profile ID.
	ModelID string `yaml:"model_id"`
	// ContextWindow is how many tokens the model accepts as input plus
	// output; a document must fit with MaxOutputTokens to spare.
	ContextWindow int `yaml:"context_window"`
	// MaxOutputTokens is sent as maxTokens on every call. Bedrock reserves
	// it against the TPM quota up front, so it should not be set higher than
	// the tasks need.
	MaxOutputTokens int     `yaml:"max_output_tokens"`
	Temperature     float64 `yaml:"temperature"`
	// SystemPrompts maps a task (summarize, classify, extract, custom) to its
	// system prompt. The key "default" covers any task without its own.
	SystemPrompts map[string]string `yaml:"system_prompts"`
	Guardrail     GuardrailRef      `yaml:"guardrail"`
	Prices        Prices            `yaml:"prices"`
	// FallbackModelID is where a job spills over when ModelID stays
	// throttled for SpilloverAfter: another model ID or inference profile
	// (for example a global. profile of a us. one) with its own quota. It is
	// called with this tier's prompts, guardrail and limits and priced at
	// this tier's prices, so it should be the same model behind another
	// profile, not a different model. Optional; empty turns spillover off.
	FallbackModelID string `yaml:"fallback_model_id"`
	// SpilloverAfter is how long one model call must have been throttled on
	// ModelID before it moves to FallbackModelID, as a duration ("30s").
	// Default 30s when FallbackModelID is set. It should stay well below the
	// pipeline's snooze budget, past which the job is released instead.
	SpilloverAfter time.Duration `yaml:"spillover_after"`
	// FallbackPrices are FallbackModelID's prices when they differ from
	// this tier's: a global. profile is priced about 10% below a regional
	// one (us., eu.). Required when the two IDs differ in scope (one global.,
	// the other not), because one model would otherwise be billed at
	// another's price; optional, and then equal to Prices, otherwise.
	FallbackPrices *Prices `yaml:"fallback_prices"`
	// ServiceTier is the Bedrock service tier every call of this tier asks
	// for: default (Standard, also when empty), flex (discounted, slower,
	// first to be throttled; it shares the model's on-demand quota),
	// priority or reserved. Prices.ServiceTiers must price it. A model that
	// refuses the tier is called again once at default, and the result says
	// so. Which models take flex and priority varies: check the Bedrock
	// documentation for yours.
	ServiceTier string `yaml:"service_tier"`
	// PromptCache puts a Converse cache point after the tier's system
	// prompt when the prompt is long enough for the model to cache it.
	PromptCache PromptCache `yaml:"prompt_cache"`
	// StructuredOutputs says the model takes Converse structured outputs
	// (outputConfig.textFormat with a JSON schema); extract jobs with a
	// schema then ask for an answer constrained to it. tierq still
	// validates the answer, and the guardrail still sees it. Default false.
	StructuredOutputs bool `yaml:"structured_outputs"`
}

// PromptCache configures prompt caching for a tier. MinTokens 0 turns it
// off (the default).
type PromptCache struct {
	// MinTokens is the model's documented minimum cacheable prefix (1,024
	// tokens for Claude Sonnet 4.5, 4,096 for Claude Haiku 4.5). Below it
	// Bedrock silently caches nothing, so tierq sends no cache point for a
	// system prompt estimated shorter than this.
	MinTokens int `yaml:"min_tokens"`
	// TTL is how long the cache entry lives: 5m (the default) or 1h. A 1h
	// write costs more (Prices.CacheWrite1hPerMTok) and pays when the same
	// prompt recurs less often than every 5 minutes.
	TTL string `yaml:"ttl"`
}

// Enabled reports whether the tier caches its system prompt.
func (c PromptCache) Enabled() bool { return c.MinTokens > 0 }

// Cache TTLs Bedrock takes in a cache point.
const (
	CacheTTL5m = "5m"
	CacheTTL1h = "1h"
)

// Service tiers a tier may ask for, as Converse's serviceTier.type names them.
const (
	ServiceTierDefault  = "default"
	ServiceTierFlex     = "flex"
	ServiceTierPriority = "priority"
	ServiceTierReserved = "reserved"
)

var serviceTiers = []string{ServiceTierDefault, ServiceTierFlex, ServiceTierPriority, ServiceTierReserved}

// RequestedServiceTier is the service tier the tier asks for, "" for
// default (nothing is sent).
func (t Tier) RequestedServiceTier() string {
	if t.ServiceTier == ServiceTierDefault {
		return ""
	}
	return t.ServiceTier
}

// HasFallback reports whether the tier has a fallback model to spill over to.
func (t Tier) HasFallback() bool { return t.FallbackModelID != "" }

// Models returns the model IDs the tier may call: its model, then its
// fallback when it has one.
func (t Tier) Models() []string {
	if t.HasFallback() {
		return []string{t.ModelID, t.FallbackModelID}
	}
	return []string{t.ModelID}
}

// SpilloverDelay is SpilloverAfter, or DefaultSpilloverAfter when it is
// zero, so a Config built in code without ApplyDefaults does not spill over
// at the first throttle.
func (t Tier) SpilloverDelay() time.Duration {
	if t.SpilloverAfter == 0 {
		return DefaultSpilloverAfter
	}
	return t.SpilloverAfter
}

// GuardrailRef names a Bedrock guardrail. Both fields empty means no guardrail.
type GuardrailRef struct {
	ID      string `yaml:"id"`
	Version string `yaml:"version"`
}

// Enabled reports whether a guardrail is configured.
func (g GuardrailRef) Enabled() bool { return g.ID != "" && g.Version != "" }

// Prices are on-demand prices in USD for one model ID, at the default
// (Standard) service tier, with the other service tiers' token prices in
// ServiceTiers. They come from configuration only, so a price change never
// needs a release.
type Prices struct {
	InputPerMTok     float64 `yaml:"input_per_mtok"`
	OutputPerMTok    float64 `yaml:"output_per_mtok"`
	CacheReadPerMTok float64 `yaml:"cache_read_per_mtok"`
	// CacheWritePerMTok prices cache writes with the 5-minute TTL (1.25×
	// input for Claude), CacheWrite1hPerMTok those with the 1-hour TTL (2×).
	CacheWritePerMTok   float64         `yaml:"cache_write_per_mtok"`
	CacheWrite1hPerMTok float64         `yaml:"cache_write_1h_per_mtok"`
	Guardrail           GuardrailPrices `yaml:"guardrail"`
	// ServiceTiers are the token prices of calls served at another service
	// tier (flex, priority, reserved), by tier name. Guardrail prices do
	// not depend on the service tier.
	ServiceTiers map[string]TokenPrices `yaml:"service_tiers"`
}

// TokenPrices are a model's token prices at one service tier, USD per
// million tokens.
type TokenPrices struct {
	InputPerMTok        float64 `yaml:"input_per_mtok"`
	OutputPerMTok       float64 `yaml:"output_per_mtok"`
	CacheReadPerMTok    float64 `yaml:"cache_read_per_mtok"`
	CacheWritePerMTok   float64 `yaml:"cache_write_per_mtok"`
	CacheWrite1hPerMTok float64 `yaml:"cache_write_1h_per_mtok"`
}

// ForServiceTier returns the prices of a call served at a service tier:
// the default prices with that tier's token prices in place. ok is false
// when the tier is not priced; the default prices are returned then, and
// the caller says so.
func (p Prices) ForServiceTier(serviceTier string) (Prices, bool) {
	if serviceTier == "" || serviceTier == ServiceTierDefault {
		return p, true
	}
	tp, ok := p.ServiceTiers[serviceTier]
	if !ok {
		return p, false
	}
	p.InputPerMTok, p.OutputPerMTok = tp.InputPerMTok, tp.OutputPerMTok
	p.CacheReadPerMTok, p.CacheWritePerMTok, p.CacheWrite1hPerMTok = tp.CacheReadPerMTok, tp.CacheWritePerMTok, tp.CacheWrite1hPerMTok
	return p, true
}

// CallPrices returns the prices of a call a tier made on model (its own
// model or its fallback) served at serviceTier. ok is false when the served
// tier is not priced and the default prices were used.
func (t Tier) CallPrices(model, serviceTier string) (Prices, bool) {
	p := t.Prices
	if model != t.ModelID && model == t.FallbackModelID && t.FallbackPrices != nil {
		p = *t.FallbackPrices
	}
	return p.ForServiceTier(serviceTier)
}

// GuardrailPrices are USD per 1,000 text units for each guardrail policy.
// Set a policy to 0 when the guardrail does not configure it: AWS bills only
// configured policies.
type GuardrailPrices struct {
	ContentPer1K       float64 `yaml:"content_per_1k"`
	TopicsPer1K        float64 `yaml:"topics_per_1k"`
	SensitiveInfoPer1K float64 `yaml:"sensitive_info_per_1k"`
	WordPer1K          float64 `yaml:"word_per_1k"`
}

// Escalation says when a job is retried on the next, more capable tier.
type Escalation struct {
	// Enabled turns escalation on. Default true.
	Enabled bool `yaml:"enabled"`
	// OnMaxTokens escalates when the model stopped at max_tokens, because
	// the next tier allows a longer answer. Default true.
	OnMaxTokens bool `yaml:"on_max_tokens"`
	// OnInvalidJSON escalates an extract task whose answer is not valid
	// JSON. Default true.
	OnInvalidJSON bool `yaml:"on_invalid_json"`
	// MaxSteps caps escalations per job. Default 1; 0 means the default, so
	// use Enabled: false to turn escalation off.
	MaxSteps int `yaml:"max_steps"`
}

// Defaults for the settings that have one.
const (
	DefaultMaxSteps = 1
	// DefaultSpilloverAfter is Tier.SpilloverAfter for a tier with a
	// fallback model: long enough that a burst of throttles is waited out on
	// the tier's own model (the limiter adapts within seconds), short enough
	// that a saturated quota does not hold jobs for minutes.
	DefaultSpilloverAfter = 30 * time.Second
)

// DefaultEscalation returns the escalation settings used when the YAML
// leaves them out. Its booleans are true, which a zero value cannot express.
func DefaultEscalation() Escalation {
	return Escalation{Enabled: true, OnMaxTokens: true, OnInvalidJSON: true, MaxSteps: DefaultMaxSteps}
}

// DefaultYAML returns a copy of the shipped default configuration file, as a
// starting point for users' own.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default returns the shipped default configuration. Each call returns a
// fresh copy that the caller may change.
func Default() *Config {
	c, err := Load(defaultYAML)
	if err != nil {
		// The file is embedded and covered by tests, so this is a build defect.
		panic("tiering: shipped default.yaml is invalid: " + err.Error())
	}
	return c
}

// Load parses a YAML configuration strictly (unknown fields are an error),
// applies defaults and validates it.
func Load(data []byte) (*Config, error) {
	// Start from the defaults so that booleans the YAML leaves out stay true.
	c := &Config{Escalation: DefaultEscalation()}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("parse tiering config: empty document")
		}
		return nil, fmt.Errorf("parse tiering config: %w", err)
	}
	// A second document would be silently ignored otherwise.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse tiering config: more than one YAML document")
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid tiering config:\n%w", err)
	}
	return c, nil
}

// ApplyDefaults fills the numeric settings left at zero. Escalation booleans
// cannot be defaulted from a zero value; Load starts from DefaultEscalation,
// and code building a Config by hand should do the same.
func (c *Config) ApplyDefaults() {
	for i := range c.Tiers {
		if t := &c.Tiers[i]; t.HasFallback() && t.SpilloverAfter == 0 {
			t.SpilloverAfter = DefaultSpilloverAfter
		}
	}
	if c.Escalation.MaxSteps == 0 {
		c.Escalation.MaxSteps = DefaultMaxSteps
	}
	c.Rules.applyDefaults()
}

// tierNameRe is what a tier may be called: the names job messages may use in
// tier_override and tier_hint (jobv1/schema/job.v1.schema.json).
var tierNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate reports every problem in the configuration at once, each naming
// the field path, so a user can fix the file in one pass.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.Tiers) == 0 {
		add("tiers: at least one tier is required")
	}
	seen := map[string]int{}
	for i, t := range c.Tiers {
		p := fmt.Sprintf("tiers[%d]", i)
		if t.Name == "" {
			add("%s.name: required", p)
		} else if !tierNameRe.MatchString(t.Name) {
			// Jobs name tiers in tier_override and tier_hint, whose schema
			// allows only these names: any other could never be asked for.
			add("%s.name: %q must be 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit", p, t.Name)
		} else if j, dup := seen[t.Name]; dup {
			add("%s.name: duplicate %q (also tiers[%d])", p, t.Name, j)
		} else {
			seen[t.Name] = i
		}
		if t.ModelID == "" {
			add("%s.model_id: required", p)
		}
		if t.ContextWindow <= 0 {
			add("%s.context_window: must be positive (got %d)", p, t.ContextWindow)
		}
		if t.MaxOutputTokens <= 0 {
			add("%s.max_output_tokens: must be positive (got %d)", p, t.MaxOutputTokens)
		} else if t.ContextWindow > 0 && t.MaxOutputTokens >= t.ContextWindow {
			add("%s.max_output_tokens: %d leaves no room for input in context_window %d", p, t.MaxOutputTokens, t.ContextWindow)
		}
		if !(t.Temperature >= 0 && t.Temperature <= 1) {
			add("%s.temperature: must be between 0 and 1 (got %v)", p, t.Temperature)
		}
		errs = append(errs, validatePrompts(p, t.SystemPrompts)...)
		if (t.Guardrail.ID == "") != (t.Guardrail.Version == "") {
			add("%s.guardrail: id and version must be set together (id %q, version %q)", p, t.Guardrail.ID, t.Guardrail.Version)
		}
		errs = append(errs, validatePrices(p+".prices", t.Prices)...)
		errs = append(errs, c.validateSpillover(p, i)...)
		errs = append(errs, validateCallFeatures(p, t)...)
	}

	if c.Escalation.MaxSteps < 1 {
		add("escalation.max_steps: must be at least 1 (got %d); set enabled: false to turn escalation off", c.Escalation.MaxSteps)
	}

	errs = append(errs, c.Rules.validate()...)
	errs = append(errs, c.validateProvisioned()...)
	return errors.Join(errs...)
}

// validateSpillover checks tiers[i]'s fallback model and spillover delay.
func (c *Config) validateSpillover(p string, i int) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	t := c.Tiers[i]
	if t.SpilloverAfter < 0 {
		add("%s.spillover_after: must not be negative (got %s)", p, t.SpilloverAfter)
	}
	fb := t.FallbackModelID
	switch {
	case fb == "":
		if t.SpilloverAfter > 0 {
			// Most likely a fallback commented out and its delay left behind:
			// the user expects spillover that will never happen.
			add("%s.spillover_after: set, but fallback_model_id is empty; spillover is off without a fallback", p)
		}
		return errs
	case strings.TrimSpace(fb) != fb:
		add("%s.fallback_model_id: %q has leading or trailing spaces", p, fb)
	case fb == t.ModelID:
		add("%s.fallback_model_id: %q is the tier's own model_id; name another model ID or inference profile", p, fb)
	}
	// A fallback answers at its tier's prices. Another tier's model would be
	// billed at that tier's prices while results and sizing used this one's.
	for j, o := range c.Tiers {
		if j != i && o.ModelID == fb {
			add("%s.fallback_model_id: %q is tiers[%d] (%s)'s model_id; a fallback must be a model of the same tier", p, fb, j, o.Name)
		}
	}
	return errs
}

// promptKeyDefault is the system_prompts key used for a task without its own.
const promptKeyDefault = "default"

func validatePrompts(p string, prompts map[string]string) []error {
	var errs []error
	// Sorted so the error list is the same on every run.
	for _, k := range slices.Sorted(maps.Keys(prompts)) {
		if k != promptKeyDefault && !isTask(k) {
			errs = append(errs, fmt.Errorf("%s.system_prompts.%s: unknown task (want %s or %s)", p, k, taskList(), promptKeyDefault))
		} else if strings.TrimSpace(prompts[k]) == "" {
			errs = append(errs, fmt.Errorf("%s.system_prompts.%s: empty prompt", p, k))
		}
	}
	if _, ok := prompts[promptKeyDefault]; !ok {
		for _, task := range tasks {
			if _, ok := prompts[task]; !ok {
				errs = append(errs, fmt.Errorf("%s.system_prompts.%s: required (or give a %q prompt)", p, task, promptKeyDefault))
			}
		}
	}
	return errs
}

func validatePrices(p string, pr Prices) []error {
	var errs []error
	check := func(field string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s.%s: must be a finite number >= 0 (got %v)", p, field, v))
		}
	}
	check("input_per_mtok", pr.InputPerMTok)
	check("output_per_mtok", pr.OutputPerMTok)
	check("cache_read_per_mtok", pr.CacheReadPerMTok)
	check("cache_write_per_mtok", pr.CacheWritePerMTok)
	check("cache_write_1h_per_mtok", pr.CacheWrite1hPerMTok)
	check("guardrail.content_per_1k", pr.Guardrail.ContentPer1K)
	check("guardrail.topics_per_1k", pr.Guardrail.TopicsPer1K)
	check("guardrail.sensitive_info_per_1k", pr.Guardrail.SensitiveInfoPer1K)
	check("guardrail.word_per_1k", pr.Guardrail.WordPer1K)

	for _, st := range slices.Sorted(maps.Keys(pr.ServiceTiers)) {
		tp, sp := pr.ServiceTiers[st], p+".service_tiers."+st
		if st == ServiceTierDefault || !slices.Contains(serviceTiers, st) {
			errs = append(errs, fmt.Errorf("%s: unknown service tier (want %s, %s or %s; default is priced by the fields above)", sp, ServiceTierFlex, ServiceTierPriority, ServiceTierReserved))
			continue
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"input_per_mtok", tp.InputPerMTok}, {"output_per_mtok", tp.OutputPerMTok}, {"cache_read_per_mtok", tp.CacheReadPerMTok},
			{"cache_write_per_mtok", tp.CacheWritePerMTok}, {"cache_write_1h_per_mtok", tp.CacheWrite1hPerMTok}} {
			check("service_tiers."+st+"."+f.name, f.v)
		}
		// Reserved capacity is paid by the month, so its calls may be
		// priced at 0; flex and priority calls are billed per token.
		if st != ServiceTierReserved && (tp.InputPerMTok == 0 || tp.OutputPerMTok == 0) {
			errs = append(errs, fmt.Errorf("%s: input_per_mtok and output_per_mtok are required", sp))
		}
	}
	// No model is free to call, so a zero here is a missing price, and a
	// missing price would make every reported cost wrong without a sign.
	switch {
	case pr.InputPerMTok == 0 && pr.OutputPerMTok == 0:
		errs = append(errs, fmt.Errorf("%s.input_per_mtok and %s.output_per_mtok: missing; supply the model's on-demand price", p, p))
	case pr.InputPerMTok == 0:
		errs = append(errs, fmt.Errorf("%s.input_per_mtok: missing; supply the model's on-demand price", p))
	case pr.OutputPerMTok == 0:
		errs = append(errs, fmt.Errorf("%s.output_per_mtok: missing; supply the model's on-demand price", p))
	}
	return errs
}

// Tier returns the tier with the given name.
func (c *Config) Tier(name string) (Tier, bool) {
	i := c.index(name)
	if i < 0 {
		return Tier{}, false
	}
	return c.Tiers[i], true
}

// SystemPrompt returns the tier's system prompt for a task, falling back to
// the "default" prompt; "" if there is neither.
func (t Tier) SystemPrompt(task string) string {
	if s, ok := t.SystemPrompts[task]; ok {
		return s
	}
	return t.SystemPrompts[promptKeyDefault]
}

func (c *Config) index(name string) int {
	return slices.IndexFunc(c.Tiers, func(t Tier) bool { return t.Name == name })
}

func (c *Config) names() string {
	names := make([]string, len(c.Tiers))
	for i, t := range c.Tiers {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

// validateCallFeatures checks a tier's service tier, prompt cache and
// fallback prices: each must be priced, because a call priced at the wrong
// rate makes every reported cost wrong without a sign.
func validateCallFeatures(p string, t Tier) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if st := t.ServiceTier; st != "" && !slices.Contains(serviceTiers, st) {
		add("%s.service_tier: unknown %q (want %s)", p, st, strings.Join(serviceTiers, ", "))
	} else if st := t.RequestedServiceTier(); st != "" {
		if _, ok := t.Prices.ServiceTiers[st]; !ok {
			add("%s.prices.service_tiers.%s: required to price calls at service_tier %s", p, st, st)
		}
		if t.FallbackPrices != nil {
			if _, ok := t.FallbackPrices.ServiceTiers[st]; !ok {
				add("%s.fallback_prices.service_tiers.%s: required to price spilled-over calls at service_tier %s", p, st, st)
			}
		}
	}
	pc := t.PromptCache
	switch {
	case pc.MinTokens < 0:
		add("%s.prompt_cache.min_tokens: must not be negative (got %d)", p, pc.MinTokens)
	case pc.TTL != "" && pc.TTL != CacheTTL5m && pc.TTL != CacheTTL1h:
		add("%s.prompt_cache.ttl: %q is not a cache TTL Bedrock takes (want %s or %s)", p, pc.TTL, CacheTTL5m, CacheTTL1h)
	case !pc.Enabled() && pc.TTL != "":
		add("%s.prompt_cache.ttl: set, but min_tokens is 0, which turns caching off; give the model's minimum cacheable prefix", p)
	case pc.Enabled():
		errs = append(errs, validateCachePrices(p+".prices", t.Prices, pc, t.RequestedServiceTier())...)
		if t.FallbackPrices != nil {
			errs = append(errs, validateCachePrices(p+".fallback_prices", *t.FallbackPrices, pc, t.RequestedServiceTier())...)
		}
	}
	if t.FallbackPrices != nil {
		if t.FallbackModelID == "" {
			add("%s.fallback_prices: set, but fallback_model_id is empty", p)
		}
		errs = append(errs, validatePrices(p+".fallback_prices", *t.FallbackPrices)...)
	} else if t.FallbackModelID != "" && isGlobal(t.FallbackModelID) != isGlobal(t.ModelID) {
		add("%s.fallback_prices: required, because fallback_model_id %q and model_id %q differ in scope (global. profiles are priced apart from regional ones)", p, t.FallbackModelID, t.ModelID)
	}
	return errs
}

// validateCachePrices requires the prices a cached call is billed at.
func validateCachePrices(p string, pr Prices, pc PromptCache, serviceTier string) []error {
	var errs []error
	check := func(path string, tp TokenPrices) {
		if tp.CacheReadPerMTok == 0 {
			errs = append(errs, fmt.Errorf("%s.cache_read_per_mtok: required with prompt_cache", path))
		}
		if pc.TTL == CacheTTL1h && tp.CacheWrite1hPerMTok == 0 {
			errs = append(errs, fmt.Errorf("%s.cache_write_1h_per_mtok: required with prompt_cache.ttl 1h", path))
		} else if pc.TTL != CacheTTL1h && tp.CacheWritePerMTok == 0 {
			errs = append(errs, fmt.Errorf("%s.cache_write_per_mtok: required with prompt_cache", path))
		}
	}
	check(p, pr.tokenPrices())
	if tp, ok := pr.ServiceTiers[serviceTier]; ok {
		check(p+".service_tiers."+serviceTier, tp)
	}
	return errs
}

func (p Prices) tokenPrices() TokenPrices {
	return TokenPrices{InputPerMTok: p.InputPerMTok, OutputPerMTok: p.OutputPerMTok, CacheReadPerMTok: p.CacheReadPerMTok,
		CacheWritePerMTok: p.CacheWritePerMTok, CacheWrite1hPerMTok: p.CacheWrite1hPerMTok}
}

// isGlobal reports whether a model ID is a global cross-Region inference
// profile, which is priced apart from regional ones.
func isGlobal(model string) bool { return strings.HasPrefix(model, "global.") }
