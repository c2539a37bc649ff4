package bedrocksim

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
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
