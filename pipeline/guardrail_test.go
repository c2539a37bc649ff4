package pipeline

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

var ref = tiering.GuardrailRef{ID: "gr-1", Version: "3"}

func pii(typ types.GuardrailPiiEntityType, action types.GuardrailSensitiveInformationPolicyAction) types.GuardrailAssessment {
	return types.GuardrailAssessment{SensitiveInformationPolicy: &types.GuardrailSensitiveInformationPolicyAssessment{
		PiiEntities: []types.GuardrailPiiEntityFilter{{Type: typ, Action: action, Match: aws.String("secret"), Detected: aws.Bool(true)}},
	}}
}

func usage(content, topics, sensitive, word int32) *types.GuardrailInvocationMetrics {
	return &types.GuardrailInvocationMetrics{Usage: &types.GuardrailUsage{
		ContentPolicyUnits: aws.Int32(content), TopicPolicyUnits: aws.Int32(topics),
		SensitiveInformationPolicyUnits: aws.Int32(sensitive), WordPolicyUnits: aws.Int32(word),
	}}
}

func trace(in map[string]types.GuardrailAssessment, out map[string][]types.GuardrailAssessment) *types.ConverseTrace {
	return &types.ConverseTrace{Guardrail: &types.GuardrailTraceAssessment{InputAssessment: in, OutputAssessments: out}}
}

func input(a types.GuardrailAssessment) map[string]types.GuardrailAssessment {
	return map[string]types.GuardrailAssessment{"gr-1": a}
}

func output(a ...types.GuardrailAssessment) map[string][]types.GuardrailAssessment {
	return map[string][]types.GuardrailAssessment{"gr-1": a}
}

func TestGuardrailOutcome(t *testing.T) {
	t.Parallel()
	anon := types.GuardrailSensitiveInformationPolicyActionAnonymized
	blocked := types.GuardrailSensitiveInformationPolicyActionBlocked
	withUnits := pii("EMAIL", anon)
	withUnits.InvocationMetrics = usage(1, 2, 3, 4)
	outUnits := types.GuardrailAssessment{InvocationMetrics: usage(0, 1, 1, 1)}
	tests := []struct {
		name  string
		stop  types.StopReason
		trace *types.ConverseTrace
		want  jobv1.GuardrailOutcome
	}{
		{"no trace, no intervention", types.StopReasonEndTurn, nil,
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailNone}},
		{"intervened without a trace fails closed", types.StopReasonGuardrailIntervened, nil,
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailBlocked}},
		{"input PII masked, model answered", types.StopReasonEndTurn, trace(input(pii("EMAIL", anon)), nil),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailMasked, Policies: []string{"sensitive_information"}, PIITypes: []string{"EMAIL:ANONYMIZED"}}},
		{"output masked is intervened but not blocked", types.StopReasonGuardrailIntervened,
			trace(input(types.GuardrailAssessment{}), output(pii("PHONE", anon))),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailMasked, Policies: []string{"sensitive_information"}, PIITypes: []string{"PHONE:ANONYMIZED"}}},
		{"input SSN blocked", types.StopReasonGuardrailIntervened, trace(input(pii("US_SOCIAL_SECURITY_NUMBER", blocked)), nil),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailBlocked, Policies: []string{"sensitive_information"}, PIITypes: []string{"US_SOCIAL_SECURITY_NUMBER:BLOCKED"}}},
		{"mask and block: block wins", types.StopReasonGuardrailIntervened,
			trace(input(pii("EMAIL", anon)), output(pii("CREDIT_DEBIT_CARD_NUMBER", blocked))),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailBlocked, Policies: []string{"sensitive_information"},
				PIITypes: []string{"CREDIT_DEBIT_CARD_NUMBER:BLOCKED", "EMAIL:ANONYMIZED"}}},
		{"detected but not acted on", types.StopReasonEndTurn,
			trace(input(pii("EMAIL", types.GuardrailSensitiveInformationPolicyActionNone)), nil),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailNone}},
		{"regex masked", types.StopReasonEndTurn, trace(input(types.GuardrailAssessment{
			SensitiveInformationPolicy: &types.GuardrailSensitiveInformationPolicyAssessment{
				Regexes: []types.GuardrailRegexFilter{{Name: aws.String("employee-id"), Action: anon}}}}), nil),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailMasked, Policies: []string{"sensitive_information"}, PIITypes: []string{"employee-id:ANONYMIZED"}}},
		{"denied topic in the answer", types.StopReasonGuardrailIntervened, trace(nil, output(types.GuardrailAssessment{
			TopicPolicy: &types.GuardrailTopicPolicyAssessment{Topics: []types.GuardrailTopic{
				{Name: aws.String("Weapons"), Type: types.GuardrailTopicTypeDeny, Action: types.GuardrailTopicPolicyActionBlocked}}}})),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailBlocked, Policies: []string{"topic"}, Topics: []string{"Weapons"}}},
		{"prompt attack", types.StopReasonGuardrailIntervened, trace(input(types.GuardrailAssessment{
			ContentPolicy: &types.GuardrailContentPolicyAssessment{Filters: []types.GuardrailContentFilter{
				{Type: types.GuardrailContentFilterTypePromptAttack, Confidence: types.GuardrailContentFilterConfidenceHigh,
					Action: types.GuardrailContentPolicyActionBlocked}}}}), nil),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailBlocked, Policies: []string{"content"}, Filters: []string{"PROMPT_ATTACK"}}},
		{"content filter that did not act", types.StopReasonEndTurn, trace(input(types.GuardrailAssessment{
			ContentPolicy: &types.GuardrailContentPolicyAssessment{Filters: []types.GuardrailContentFilter{
				{Type: types.GuardrailContentFilterTypeHate, Action: types.GuardrailContentPolicyActionNone}}}}), nil),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailNone}},
		{"custom and managed words", types.StopReasonGuardrailIntervened, trace(input(types.GuardrailAssessment{
			WordPolicy: &types.GuardrailWordPolicyAssessment{
				CustomWords:      []types.GuardrailCustomWord{{Match: aws.String("x"), Action: types.GuardrailWordPolicyActionBlocked}},
				ManagedWordLists: []types.GuardrailManagedWord{{Type: types.GuardrailManagedWordTypeProfanity, Action: types.GuardrailWordPolicyActionBlocked}},
			}}), nil),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailBlocked, Policies: []string{"word"}}},
		{"contextual grounding", types.StopReasonGuardrailIntervened, trace(nil, output(types.GuardrailAssessment{
			ContextualGroundingPolicy: &types.GuardrailContextualGroundingPolicyAssessment{Filters: []types.GuardrailContextualGroundingFilter{
				{Type: types.GuardrailContextualGroundingFilterTypeGrounding, Action: types.GuardrailContextualGroundingPolicyActionBlocked}}}})),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailBlocked, Policies: []string{"contextual_grounding"}, Filters: []string{"GROUNDING"}}},
		{"text units from input and every output assessment", types.StopReasonEndTurn,
			trace(input(withUnits), map[string][]types.GuardrailAssessment{"gr-1": {outUnits, outUnits}, "gr-other": {outUnits}}),
			jobv1.GuardrailOutcome{Action: jobv1.GuardrailMasked, Policies: []string{"sensitive_information"}, PIITypes: []string{"EMAIL:ANONYMIZED"},
				TextUnits: tiering.GuardrailUnits{Content: 1, Topics: 5, SensitiveInfo: 6, Word: 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := guardrailOutcome(ref, tt.stop, tt.trace)
			want := tt.want
			want.ID, want.Version = ref.ID, ref.Version
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("outcome\n got %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestGuardrailOutcomeWithoutGuardrail(t *testing.T) {
	t.Parallel()
	if got := guardrailOutcome(tiering.GuardrailRef{}, types.StopReasonEndTurn, nil); got != nil {
		t.Errorf("outcome = %+v, want nil for a tier without a guardrail", got)
	}
}

func TestMergeGuardrail(t *testing.T) {
	t.Parallel()
	a := &jobv1.GuardrailOutcome{ID: "g", Version: "1", Action: jobv1.GuardrailMasked, Policies: []string{"sensitive_information"},
		PIITypes: []string{"EMAIL:ANONYMIZED"}, TextUnits: tiering.GuardrailUnits{Content: 1, SensitiveInfo: 2}}
	b := &jobv1.GuardrailOutcome{ID: "g", Version: "1", Action: jobv1.GuardrailNone, Policies: []string{"topic"}, Topics: []string{"Weapons"},
		TextUnits: tiering.GuardrailUnits{Content: 1, Topics: 3, SensitiveInfo: 2}}
	got := mergeGuardrail(a, b)
	want := &jobv1.GuardrailOutcome{ID: "g", Version: "1", Action: jobv1.GuardrailMasked, Policies: []string{"sensitive_information", "topic"},
		PIITypes: []string{"EMAIL:ANONYMIZED"}, Topics: []string{"Weapons"}, TextUnits: tiering.GuardrailUnits{Content: 2, Topics: 3, SensitiveInfo: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge\n got %+v\nwant %+v", got, want)
	}
	if mergeGuardrail(nil, b) != b || mergeGuardrail(a, nil) != a {
		t.Error("merging with nil must return the other outcome")
	}
}
