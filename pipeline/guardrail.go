package pipeline

import (
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// Policy names in GuardrailOutcome.Policies.
const (
	policySensitive = "sensitive_information"
	policyTopic     = "topic"
	policyContent   = "content"
	policyWord      = "word"
	policyGrounding = "contextual_grounding"
)

// guardrailOutcome reads what the guardrail did in one Converse call from
// the call's stop reason and guardrail trace.
//
// Bedrock stops with guardrail_intervened both when it blocked and when it
// only masked (anonymized) PII in the answer, so the stop reason alone must
// not decide: an answer with masked e-mail addresses is a good answer. The
// assessments decide: any BLOCKED action in any policy, input or output,
// blocks; otherwise ANONYMIZED masks. An input whose PII was masked ends with
// end_turn, so a masked input is found only in the trace. Should Bedrock
// intervene without a readable trace, the call counts as blocked: an answer
// we cannot vouch for is not reported as a success.
func guardrailOutcome(ref tiering.GuardrailRef, stop types.StopReason, trace *types.ConverseTrace) *jobv1.GuardrailOutcome {
	if !ref.Enabled() {
		return nil
	}
	a := newAssessor()
	if trace != nil && trace.Guardrail != nil {
		g := trace.Guardrail
		// Map order is random; sort so results are reproducible.
		for _, id := range slices.Sorted(maps.Keys(g.InputAssessment)) {
			a.visit(g.InputAssessment[id])
		}
		for _, id := range slices.Sorted(maps.Keys(g.OutputAssessments)) {
			for _, as := range g.OutputAssessments[id] {
				a.visit(as)
			}
		}
	}
	o := a.outcome(ref)
	if o.Action == jobv1.GuardrailNone && stop == types.StopReasonGuardrailIntervened {
		o.Action = jobv1.GuardrailBlocked
	}
	return o
}

// assessor accumulates findings over assessments as sets.
type assessor struct {
	policies, pii, topics, filters map[string]bool
	blocked, masked                bool
	units                          tiering.GuardrailUnits
}

func newAssessor() *assessor {
	return &assessor{policies: map[string]bool{}, pii: map[string]bool{}, topics: map[string]bool{}, filters: map[string]bool{}}
}

// visit records one assessment. Matched text is never kept: it is document
// content, and results and logs must not carry it.
func (a *assessor) visit(as types.GuardrailAssessment) {
	if p := as.SensitiveInformationPolicy; p != nil {
		for _, e := range p.PiiEntities {
			a.sensitive(string(e.Type), e.Action)
		}
		for _, r := range p.Regexes {
			a.sensitive(deref(r.Name), r.Action)
		}
	}
	if p := as.TopicPolicy; p != nil {
		for _, t := range p.Topics {
			if t.Action == types.GuardrailTopicPolicyActionBlocked {
				a.block(policyTopic)
				a.topics[deref(t.Name)] = true
			}
		}
	}
	if p := as.ContentPolicy; p != nil {
		for _, f := range p.Filters {
			if f.Action == types.GuardrailContentPolicyActionBlocked {
				a.block(policyContent)
				a.filters[string(f.Type)] = true
			}
		}
	}
	if p := as.WordPolicy; p != nil {
		for _, w := range p.CustomWords {
			if w.Action == types.GuardrailWordPolicyActionBlocked {
				a.block(policyWord)
			}
		}
		for _, w := range p.ManagedWordLists {
			if w.Action == types.GuardrailWordPolicyActionBlocked {
				a.block(policyWord)
			}
		}
	}
	if p := as.ContextualGroundingPolicy; p != nil {
		for _, f := range p.Filters {
			if f.Action == types.GuardrailContextualGroundingPolicyActionBlocked {
				a.block(policyGrounding)
				a.filters[string(f.Type)] = true
			}
		}
	}
	if m := as.InvocationMetrics; m != nil && m.Usage != nil {
		u := m.Usage
		a.units.Content += int(deref(u.ContentPolicyUnits))
		a.units.Topics += int(deref(u.TopicPolicyUnits))
		a.units.SensitiveInfo += int(deref(u.SensitiveInformationPolicyUnits))
		a.units.Word += int(deref(u.WordPolicyUnits))
	}
}

func (a *assessor) sensitive(name string, action types.GuardrailSensitiveInformationPolicyAction) {
	switch action {
	case types.GuardrailSensitiveInformationPolicyActionBlocked:
		a.block(policySensitive)
	case types.GuardrailSensitiveInformationPolicyActionAnonymized:
		a.masked = true
		a.policies[policySensitive] = true
	default:
		// Detected but not acted on (detect-only mode): nothing happened to the job.
		return
	}
	a.pii[name+":"+string(action)] = true
}

func (a *assessor) block(policy string) {
	a.blocked = true
	a.policies[policy] = true
}

func (a *assessor) outcome(ref tiering.GuardrailRef) *jobv1.GuardrailOutcome {
	o := &jobv1.GuardrailOutcome{ID: ref.ID, Version: ref.Version, Action: jobv1.GuardrailNone, TextUnits: a.units}
	switch {
	case a.blocked:
		o.Action = jobv1.GuardrailBlocked
	case a.masked:
		o.Action = jobv1.GuardrailMasked
	}
	o.Policies = sortedSet(a.policies)
	o.PIITypes = sortedSet(a.pii)
	o.Topics = sortedSet(a.topics)
	o.Filters = sortedSet(a.filters)
	return o
}

// mergeGuardrail combines the outcomes of a job's calls (escalation makes
// more than one): the strongest action, the union of findings, the sum of
// text units. The guardrail named is the last call's.
func mergeGuardrail(acc, o *jobv1.GuardrailOutcome) *jobv1.GuardrailOutcome {
	if acc == nil {
		return o
	}
	if o == nil {
		return acc
	}
	m := *o
	m.Action = max(actionRank(acc.Action), actionRank(o.Action)).String()
	m.Policies = union(acc.Policies, o.Policies)
	m.PIITypes = union(acc.PIITypes, o.PIITypes)
	m.Topics = union(acc.Topics, o.Topics)
	m.Filters = union(acc.Filters, o.Filters)
	m.TextUnits = acc.TextUnits.Add(o.TextUnits)
	return &m
}

type rank int

func actionRank(a string) rank {
	switch a {
	case jobv1.GuardrailBlocked:
		return 2
	case jobv1.GuardrailMasked:
		return 1
	}
	return 0
}

func (r rank) String() string {
	return [...]string{jobv1.GuardrailNone, jobv1.GuardrailMasked, jobv1.GuardrailBlocked}[r]
}

func union(a, b []string) []string {
	s := map[string]bool{}
	for _, v := range a {
		s[v] = true
	}
	for _, v := range b {
		s[v] = true
	}
	return sortedSet(s)
}

func sortedSet(s map[string]bool) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(s))
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
