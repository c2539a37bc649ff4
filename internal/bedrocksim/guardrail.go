package bedrocksim

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// piiPatterns detect the entity types the simulator supports. They are
// deliberately simple (real Bedrock uses ML models); what matters for tierq is
// that each type is found in plain documents and masked or blocked. The order
// is the order of precedence when two patterns overlap: a card number is not
// also reported as a phone number.
var piiPatterns = []struct {
	typ string
	re  *regexp.Regexp
	ok  func(string) bool // extra check on a match, nil for none
}{
	{"CREDIT_DEBIT_CARD_NUMBER", regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`), luhn},
	{"US_SOCIAL_SECURITY_NUMBER", regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`), nil},
	{"AWS_ACCESS_KEY", regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`), nil},
	{"EMAIL", regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`), nil},
	{"PHONE", regexp.MustCompile(`(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b`), nil},
	{"IP_ADDRESS", regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b`), nil},
}

// promptAttackPhrases are common injection openers. Bedrock's filter is a
// classifier; a phrase list is enough to exercise tierq's handling of it.
var promptAttackPhrases = regexp.MustCompile(`(?i)\b(?:ignore (?:all |any )?(?:the )?(?:previous|prior|above|earlier) (?:instructions|prompts?|rules)|disregard (?:all |any )?(?:your |the )?(?:previous |prior )?(?:instructions|rules|guidelines)|forget (?:all )?(?:your|previous) instructions|reveal (?:your|the) (?:system prompt|instructions)|you are now (?:dan|in developer mode)|developer mode enabled|act as an unrestricted|jailbreak)\b`)

func luhn(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 13 && sum%10 == 0
}

// guard is a Guardrail compiled for evaluation.
type guard struct {
	id       string
	cfg      Guardrail
	versions map[string]bool
	pii      map[string]string // type -> ANONYMIZE | BLOCK
	topics   []compiledTerm
	words    []compiledTerm
}

type compiledTerm struct {
	name string
	re   *regexp.Regexp
}

func termRegexp(phrases []string) *regexp.Regexp {
	quoted := make([]string, len(phrases))
	for i, p := range phrases {
		quoted[i] = regexp.QuoteMeta(strings.TrimSpace(p))
	}
	return regexp.MustCompile(`(?i)\b(?:` + strings.Join(quoted, "|") + `)\b`)
}

func compileGuard(id string, g Guardrail) *guard {
	c := &guard{id: id, cfg: g, versions: map[string]bool{}, pii: map[string]string{}}
	for _, v := range g.Versions {
		c.versions[v] = true
	}
	for _, r := range g.PII {
		c.pii[r.Type] = r.Action
	}
	for _, t := range g.Topics {
		c.topics = append(c.topics, compiledTerm{t.Name, termRegexp(t.Keywords)})
	}
	for _, w := range g.Words {
		c.words = append(c.words, compiledTerm{w, termRegexp([]string{w})})
	}
	return c
}

// verdict is the outcome of evaluating one or more texts.
type verdict struct {
	findings
	masked  string // the text with anonymized entities replaced by {TYPE}
	blocked bool
	masking bool // at least one entity was anonymized
}

func (v verdict) intervened() bool { return v.blocked || v.masking }

// findings are what the policies detected, kept as flat lists so verdicts of
// several texts merge by appending; assessment turns them into the wire shape.
type findings struct {
	topics  []topicHit
	filters []contentFilterHit
	words   []wordHit
	pii     []piiHit
	usage   guardrailUsage
	chars   int
}

// merge folds another text's verdict into v (the masked text is per text and
// is not merged).
func (v *verdict) merge(o verdict) {
	v.blocked = v.blocked || o.blocked
	v.masking = v.masking || o.masking
	v.topics = append(v.topics, o.topics...)
	v.filters = append(v.filters, o.filters...)
	v.words = append(v.words, o.words...)
	v.pii = append(v.pii, o.pii...)
	v.usage.add(o.usage)
	v.chars += o.chars
}

func (f findings) assessment() *assessment {
	a := &assessment{InvocationMetrics: &invocationMetrics{Usage: f.usage}}
	a.InvocationMetrics.GuardrailCoverage.TextCharacters.Guarded = f.chars
	a.InvocationMetrics.GuardrailCoverage.TextCharacters.Total = f.chars
	if len(f.topics) > 0 {
		a.TopicPolicy = &topicPolicy{Topics: f.topics}
	}
	if len(f.filters) > 0 {
		a.ContentPolicy = &contentPolicy{Filters: f.filters}
	}
	if len(f.words) > 0 {
		a.WordPolicy = &wordPolicy{CustomWords: f.words}
	}
	if len(f.pii) > 0 {
		a.SensitiveInformationPolicy = &sensitivePolicy{PIIEntities: f.pii}
	}
	return a
}

// textUnits is Bedrock's billing unit: one per 1,000 characters, rounded up.
func textUnits(chars int) int {
	if chars == 0 {
		return 0
	}
	return (chars + 999) / 1000
}

type span struct {
	start, end int
	typ        string
}

// evaluate applies every configured policy to text. input is true for the
// INPUT source; the prompt-attack filter only looks at input, as Bedrock's does.
func (g *guard) evaluate(text string, input bool) verdict {
	v := verdict{masked: text}
	if len(g.pii) > 0 {
		var spans []span
		for _, p := range piiPatterns {
			action, on := g.pii[p.typ]
			if !on {
				continue
			}
			for _, loc := range p.re.FindAllStringIndex(text, -1) {
				m := text[loc[0]:loc[1]]
				if (p.ok != nil && !p.ok(m)) || overlaps(spans, loc[0], loc[1]) {
					continue
				}
				spans = append(spans, span{loc[0], loc[1], p.typ})
				hit := piiHit{Match: m, Type: p.typ, Detected: true, Action: "ANONYMIZED"}
				if action == "BLOCK" {
					hit.Action = "BLOCKED"
					v.blocked = true
				} else {
					v.masking = true
				}
				v.pii = append(v.pii, hit)
			}
		}
		v.masked = mask(text, spans, g.pii)
	}
	for _, t := range g.topics {
		if t.re.MatchString(text) {
			v.topics = append(v.topics, topicHit{Name: t.name, Type: "DENY", Action: "BLOCKED", Detected: true})
			v.blocked = true
		}
	}
	for _, w := range g.words {
		if m := w.re.FindString(text); m != "" {
			v.words = append(v.words, wordHit{Match: m, Action: "BLOCKED", Detected: true})
			v.blocked = true
		}
	}
	if g.cfg.PromptAttack && input && promptAttackPhrases.MatchString(text) {
		v.filters = append(v.filters, contentFilterHit{
			Type: "PROMPT_ATTACK", Confidence: "HIGH", FilterStrength: "HIGH", Action: "BLOCKED", Detected: true,
		})
		v.blocked = true
	}

	v.chars = utf8.RuneCountInString(text)
	units := textUnits(v.chars)
	if len(g.pii) > 0 {
		v.usage.SensitiveInformationPolicyUnits = units
	}
	if len(g.topics) > 0 {
		v.usage.TopicPolicyUnits = units
	}
	if len(g.words) > 0 {
		v.usage.WordPolicyUnits = units
	}
	if g.cfg.PromptAttack && input {
		v.usage.ContentPolicyUnits = units
	}
	return v
}

func overlaps(spans []span, start, end int) bool {
	return slices.ContainsFunc(spans, func(s span) bool { return start < s.end && s.start < end })
}

// mask replaces anonymized spans with {TYPE}, as Bedrock does.
func mask(text string, spans []span, actions map[string]string) string {
	if len(spans) == 0 {
		return text
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	last := 0
	for _, s := range spans {
		if actions[s.typ] != "ANONYMIZE" {
			continue
		}
		b.WriteString(text[last:s.start])
		fmt.Fprintf(&b, "{%s}", s.typ)
		last = s.end
	}
	b.WriteString(text[last:])
	return b.String()
}

// actionReason is the trace's summary of a verdict.
func actionReason(blocked, masked bool) string {
	switch {
	case blocked:
		return "Guardrail blocked."
	case masked:
		return "Guardrail masked."
	}
	return ""
}

// guardrailResource is an AWS::Bedrock::Guardrail resource as CloudFormation
// spells it (deploy/cloudformation/guardrail.yaml). Properties the simulator
// does not evaluate are still named here, so a misspelt one is an error
// rather than a policy silently missing.
type guardrailResource struct {
	Type       string               `yaml:"Type"`
	Metadata   map[string]yaml.Node `yaml:"Metadata"`
	Properties struct {
		Name                    string `yaml:"Name"`
		Description             string `yaml:"Description"`
		BlockedInputMessaging   string `yaml:"BlockedInputMessaging"`
		BlockedOutputsMessaging string `yaml:"BlockedOutputsMessaging"`
		ContentPolicyConfig     struct {
			FiltersConfig []struct {
				Type           string `yaml:"Type"`
				InputStrength  string `yaml:"InputStrength"`
				OutputStrength string `yaml:"OutputStrength"`
				directional    `yaml:",inline"`
				modalities     `yaml:",inline"`
			} `yaml:"FiltersConfig"`
			ContentFiltersTierConfig yaml.Node `yaml:"ContentFiltersTierConfig"`
		} `yaml:"ContentPolicyConfig"`
		SensitiveInformationPolicyConfig struct {
			PiiEntitiesConfig []struct {
				Type        string `yaml:"Type"`
				Action      string `yaml:"Action"`
				directional `yaml:",inline"`
			} `yaml:"PiiEntitiesConfig"`
			RegexesConfig []yaml.Node `yaml:"RegexesConfig"`
		} `yaml:"SensitiveInformationPolicyConfig"`
		TopicPolicyConfig struct {
			TopicsConfig []struct {
				Name        string   `yaml:"Name"`
				Type        string   `yaml:"Type"`
				Definition  string   `yaml:"Definition"`
				Examples    []string `yaml:"Examples"`
				directional `yaml:",inline"`
			} `yaml:"TopicsConfig"`
			TopicsTierConfig yaml.Node `yaml:"TopicsTierConfig"`
		} `yaml:"TopicPolicyConfig"`
		WordPolicyConfig struct {
			WordsConfig []struct {
				Text        string `yaml:"Text"`
				directional `yaml:",inline"`
			} `yaml:"WordsConfig"`
			ManagedWordListsConfig []yaml.Node `yaml:"ManagedWordListsConfig"`
		} `yaml:"WordPolicyConfig"`
		ContextualGroundingPolicyConfig yaml.Node `yaml:"ContextualGroundingPolicyConfig"`
		AutomatedReasoningPolicyConfig  yaml.Node `yaml:"AutomatedReasoningPolicyConfig"`
		CrossRegionConfig               yaml.Node `yaml:"CrossRegionConfig"`
		KmsKeyArn                       yaml.Node `yaml:"KmsKeyArn"`
		Tags                            yaml.Node `yaml:"Tags"`
	} `yaml:"Properties"`
}

// directional are the per-direction settings a policy entry may carry
// (detect mode, input or output only). The simulator applies one action to
// both directions, so any of them makes the entry not simulated as written.
type directional struct {
	InputAction   string `yaml:"InputAction"`
	OutputAction  string `yaml:"OutputAction"`
	InputEnabled  *bool  `yaml:"InputEnabled"`
	OutputEnabled *bool  `yaml:"OutputEnabled"`
}

func (d directional) set() bool {
	return d.InputAction != "" || d.OutputAction != "" || d.InputEnabled != nil || d.OutputEnabled != nil
}

// modalities are a content filter's input and output modalities (text,
// image); the simulator sees text only.
type modalities struct {
	InputModalities  []string `yaml:"InputModalities"`
	OutputModalities []string `yaml:"OutputModalities"`
}

// simulatorMetadata is the resource's Metadata["tierq-simulator"]: what the
// simulator needs that Bedrock's classifiers get from elsewhere.
type simulatorMetadata struct {
	// TopicKeywords maps each denied topic's Name to the keywords or
	// phrases that stand in for Bedrock's topic classifier.
	TopicKeywords map[string][]string `yaml:"TopicKeywords"`
}

// SimulatorMetadataKey is the Metadata key of a guardrail definition the
// simulator reads (CloudFormation ignores resource Metadata).
const SimulatorMetadataKey = "tierq-simulator"

// ParseGuardrailDefinition builds a simulated guardrail from an
// AWS::Bedrock::Guardrail resource in CloudFormation's YAML or JSON (Type,
// Metadata, Properties; intrinsic tags such as !Sub are read as plain
// values), the form of deploy/cloudformation/guardrail.yaml. Denied topics
// are matched by Metadata.tierq-simulator.TopicKeywords, one entry per topic.
//
// notSimulated lists, by property path, what the definition asks for that
// the simulator does not evaluate (content filters other than
// PROMPT_ATTACK, PII types it does not detect, regexes, managed word lists,
// per-direction actions, contextual grounding, automated reasoning): those
// policies never fire in the simulator. The returned Guardrail has no
// Versions; the caller names them. The error lists every problem at once.
func ParseGuardrailDefinition(data []byte) (g Guardrail, notSimulated []string, err error) {
	var r guardrailResource
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return Guardrail{}, nil, fmt.Errorf("guardrail definition: %w", err)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("guardrail definition: "+format, args...))
	}
	skip := func(format string, args ...any) { notSimulated = append(notSimulated, fmt.Sprintf(format, args...)) }
	if r.Type != "AWS::Bedrock::Guardrail" {
		bad("Type: want AWS::Bedrock::Guardrail, got %q", r.Type)
	}
	var meta simulatorMetadata
	if node, ok := r.Metadata[SimulatorMetadataKey]; ok {
		if err := decodeStrict(&node, &meta); err != nil {
			bad("Metadata.%s: %v", SimulatorMetadataKey, err)
		}
	}
	p := r.Properties
	g.BlockedInputMessage = p.BlockedInputMessaging
	g.BlockedOutputMessage = p.BlockedOutputsMessaging
	if g.BlockedInputMessage == "" || g.BlockedOutputMessage == "" {
		bad("Properties: BlockedInputMessaging and BlockedOutputsMessaging are required")
	}

	for i, f := range p.ContentPolicyConfig.FiltersConfig {
		path := fmt.Sprintf("Properties.ContentPolicyConfig.FiltersConfig[%d]", i)
		switch {
		case f.Type != "PROMPT_ATTACK":
			skip("%s: content filter %s", path, f.Type)
		case f.directional.set():
			skip("%s: per-direction settings of PROMPT_ATTACK", path)
		case f.InputStrength == "" || f.InputStrength == "NONE":
			// Off: Bedrock looks for prompt attacks in input only.
		default:
			g.PromptAttack = true
		}
	}
	if !p.ContentPolicyConfig.ContentFiltersTierConfig.IsZero() {
		skip("Properties.ContentPolicyConfig.ContentFiltersTierConfig")
	}

	for i, e := range p.SensitiveInformationPolicyConfig.PiiEntitiesConfig {
		path := fmt.Sprintf("Properties.SensitiveInformationPolicyConfig.PiiEntitiesConfig[%d]", i)
		switch {
		case e.Action != "BLOCK" && e.Action != "ANONYMIZE" && e.Action != "NONE":
			bad("%s.Action: want BLOCK, ANONYMIZE or NONE, got %q", path, e.Action)
		case e.Action == "NONE" || e.directional.set():
			skip("%s: %s in detect mode or per direction", path, e.Type)
		case !piiTypes[e.Type]:
			skip("%s: PII type %s", path, e.Type)
		default:
			g.PII = append(g.PII, PIIRule{Type: e.Type, Action: e.Action})
		}
	}
	for i := range p.SensitiveInformationPolicyConfig.RegexesConfig {
		skip("Properties.SensitiveInformationPolicyConfig.RegexesConfig[%d]", i)
	}

	topics := map[string]bool{}
	for i, t := range p.TopicPolicyConfig.TopicsConfig {
		path := fmt.Sprintf("Properties.TopicPolicyConfig.TopicsConfig[%d]", i)
		topics[t.Name] = true
		switch {
		case t.Name == "":
			bad("%s.Name: required", path)
		case t.Type != "DENY":
			bad("%s.Type: want DENY, got %q", path, t.Type)
		case len(meta.TopicKeywords[t.Name]) == 0:
			bad("%s: topic %q has no keywords in Metadata.%s.TopicKeywords; the simulator matches topics by keywords, not by the definition", path, t.Name, SimulatorMetadataKey)
		case t.directional.set():
			skip("%s: per-direction settings of topic %s", path, t.Name)
		default:
			g.Topics = append(g.Topics, Topic{Name: t.Name, Keywords: meta.TopicKeywords[t.Name]})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(meta.TopicKeywords)) {
		if !topics[name] {
			bad("Metadata.%s.TopicKeywords: %q is not a topic of TopicPolicyConfig", SimulatorMetadataKey, name)
		}
	}
	if !p.TopicPolicyConfig.TopicsTierConfig.IsZero() {
		skip("Properties.TopicPolicyConfig.TopicsTierConfig")
	}

	for i, w := range p.WordPolicyConfig.WordsConfig {
		path := fmt.Sprintf("Properties.WordPolicyConfig.WordsConfig[%d]", i)
		switch {
		case strings.TrimSpace(w.Text) == "":
			bad("%s.Text: required", path)
		case w.directional.set():
			skip("%s: per-direction settings of word %d", path, i)
		default:
			g.Words = append(g.Words, w.Text)
		}
	}
	for i := range p.WordPolicyConfig.ManagedWordListsConfig {
		skip("Properties.WordPolicyConfig.ManagedWordListsConfig[%d]", i)
	}
	if !p.ContextualGroundingPolicyConfig.IsZero() {
		skip("Properties.ContextualGroundingPolicyConfig")
	}
	if !p.AutomatedReasoningPolicyConfig.IsZero() {
		skip("Properties.AutomatedReasoningPolicyConfig")
	}
	if err := errors.Join(errs...); err != nil {
		return Guardrail{}, nil, err
	}
	return g, notSimulated, nil
}
