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
}

// HasFallback reports whether the tier has a fallback model to spill over to.
func (t Tier) HasFallback() bool { return t.FallbackModelID != "" }

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

// Prices are on-demand prices in USD. They come from configuration only, so
// a price change never needs a release.
type Prices struct {
	InputPerMTok      float64         `yaml:"input_per_mtok"`
	OutputPerMTok     float64         `yaml:"output_per_mtok"`
	CacheReadPerMTok  float64         `yaml:"cache_read_per_mtok"`
	CacheWritePerMTok float64         `yaml:"cache_write_per_mtok"`
	Guardrail         GuardrailPrices `yaml:"guardrail"`
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

// Validate reports every problem in the configuration at once, each naming
// the field path, so a user can fix the file in one pass.
// tierNameRe is what a tier may be called: the names job messages may use in
// tier_override and tier_hint (jobv1/schema/job.v1.schema.json).
var tierNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

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
	check("guardrail.content_per_1k", pr.Guardrail.ContentPer1K)
	check("guardrail.topics_per_1k", pr.Guardrail.TopicsPer1K)
	check("guardrail.sensitive_info_per_1k", pr.Guardrail.SensitiveInfoPer1K)
	check("guardrail.word_per_1k", pr.Guardrail.WordPer1K)

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
