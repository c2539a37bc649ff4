package bedrocksim_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/deploy/cloudformation"
	"github.com/tierq/tierq/internal/bedrocksim"
)

// The default guardrail comes from deploy/cloudformation/guardrail.yaml, and
// everything that file asks for is simulated: a policy the simulator skipped
// would make local tests pass on a guardrail weaker than the deployed one.
// The expected value is the built-in guardrail as it was hard-coded before
// the definition was shared; changing guardrail.yaml changes it on purpose.
func TestShippedGuardrailDefinitionIsSimulated(t *testing.T) {
	t.Parallel()
	g, skipped, err := bedrocksim.ParseGuardrailDefinition(cloudformation.GuardrailYAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) > 0 {
		t.Errorf("deploy/cloudformation/guardrail.yaml asks for policies the simulator does not evaluate: %v", skipped)
	}
	want := bedrocksim.Guardrail{
		Versions:             []string{"DRAFT", "1"},
		BlockedInputMessage:  "Sorry, the model cannot answer this request because it contains content our policy blocks.",
		BlockedOutputMessage: "Sorry, the model's answer was blocked by our content policy.",
		PII: []bedrocksim.PIIRule{
			{Type: "EMAIL", Action: "ANONYMIZE"},
			{Type: "PHONE", Action: "ANONYMIZE"},
			{Type: "US_SOCIAL_SECURITY_NUMBER", Action: "BLOCK"},
			{Type: "CREDIT_DEBIT_CARD_NUMBER", Action: "BLOCK"},
		},
		Topics:       []bedrocksim.Topic{{Name: "Weapons", Keywords: []string{"build a bomb", "make a bomb", "untraceable firearm", "nerve agent"}}},
		PromptAttack: true,
	}
	got := bedrocksim.DefaultConfig().Guardrails[bedrocksim.DefaultGuardrailID]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default guardrail:\n got %+v\nwant %+v", got, want)
	}
	g.Versions = want.Versions
	if !reflect.DeepEqual(g, want) {
		t.Errorf("parsed definition:\n got %+v\nwant %+v", g, want)
	}
}

// salaryKeywords gives the Salary topic its simulator keywords.
const salaryKeywords = `Metadata:
  tierq-simulator:
    TopicKeywords: {Salary: [salary negotiation]}
`

const definitionHead = `Type: AWS::Bedrock::Guardrail
Properties:
  Name: !Sub "${AWS::StackName}-guard"
  BlockedInputMessaging: no input
  BlockedOutputsMessaging: no output
`

func TestParseGuardrailDefinition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		yaml        string
		want        bedrocksim.Guardrail
		wantSkipped []string
		wantErr     []string
	}{{
		name: "every simulated policy",
		yaml: definitionHead + `  ContentPolicyConfig:
    FiltersConfig: [{Type: PROMPT_ATTACK, InputStrength: MEDIUM, OutputStrength: NONE}]
  SensitiveInformationPolicyConfig:
    PiiEntitiesConfig: [{Type: IP_ADDRESS, Action: BLOCK}, {Type: AWS_ACCESS_KEY, Action: ANONYMIZE}]
  TopicPolicyConfig:
    TopicsConfig: [{Name: Salary, Type: DENY, Definition: Pay talks., Examples: ["What should I ask for?"]}]
  WordPolicyConfig:
    WordsConfig: [{Text: Project Falcon}]
` + salaryKeywords,
		want: bedrocksim.Guardrail{
			BlockedInputMessage: "no input", BlockedOutputMessage: "no output",
			PII:          []bedrocksim.PIIRule{{Type: "IP_ADDRESS", Action: "BLOCK"}, {Type: "AWS_ACCESS_KEY", Action: "ANONYMIZE"}},
			Topics:       []bedrocksim.Topic{{Name: "Salary", Keywords: []string{"salary negotiation"}}},
			Words:        []string{"Project Falcon"},
			PromptAttack: true,
		},
	}, {
		name: "what the simulator cannot evaluate is listed, not dropped silently",
		yaml: definitionHead + `  ContentPolicyConfig:
    FiltersConfig:
      - {Type: HATE, InputStrength: HIGH, OutputStrength: HIGH}
      - {Type: PROMPT_ATTACK, InputStrength: HIGH, OutputStrength: NONE, InputAction: NONE}
  SensitiveInformationPolicyConfig:
    PiiEntitiesConfig: [{Type: NAME, Action: ANONYMIZE}, {Type: EMAIL, Action: NONE}]
    RegexesConfig: [{Name: ticket, Pattern: "T-[0-9]+", Action: BLOCK}]
  WordPolicyConfig:
    ManagedWordListsConfig: [{Type: PROFANITY}]
  ContextualGroundingPolicyConfig:
    FiltersConfig: [{Type: GROUNDING, Threshold: 0.7}]
`,
		want: bedrocksim.Guardrail{BlockedInputMessage: "no input", BlockedOutputMessage: "no output"},
		wantSkipped: []string{
			"Properties.ContentPolicyConfig.FiltersConfig[0]: content filter HATE",
			"Properties.ContentPolicyConfig.FiltersConfig[1]: per-direction settings of PROMPT_ATTACK",
			"Properties.SensitiveInformationPolicyConfig.PiiEntitiesConfig[0]: PII type NAME",
			"Properties.SensitiveInformationPolicyConfig.PiiEntitiesConfig[1]: EMAIL in detect mode or per direction",
			"Properties.SensitiveInformationPolicyConfig.RegexesConfig[0]",
			"Properties.WordPolicyConfig.ManagedWordListsConfig[0]",
			"Properties.ContextualGroundingPolicyConfig",
		},
		wantErr: nil,
	}, {
		name: "prompt attack at strength NONE is off",
		yaml: definitionHead + `  ContentPolicyConfig:
    FiltersConfig: [{Type: PROMPT_ATTACK, InputStrength: NONE, OutputStrength: NONE}]
`,
		want: bedrocksim.Guardrail{BlockedInputMessage: "no input", BlockedOutputMessage: "no output"},
	}, {
		name: "a misspelt property is an error, not a missing policy",
		yaml: definitionHead + `  SensitiveInformationPolicyConfig:
    PiiEntityConfig: [{Type: EMAIL, Action: BLOCK}]
`,
		wantErr: []string{"field PiiEntityConfig not found"},
	}, {
		name: "every problem at once",
		yaml: `Type: AWS::Bedrock::Guardrailz
Metadata:
  tierq-simulator:
    TopicKeywords: {Weapons: [bomb]}
Properties:
  BlockedInputMessaging: no input
  SensitiveInformationPolicyConfig:
    PiiEntitiesConfig: [{Type: EMAIL, Action: MASK}]
  TopicPolicyConfig:
    TopicsConfig: [{Name: Salary, Type: DENY, Definition: Pay talks.}, {Name: Weapons, Type: ALLOW, Definition: x}]
  WordPolicyConfig:
    WordsConfig: [{Text: " "}]
`,
		wantErr: []string{
			`Type: want AWS::Bedrock::Guardrail, got "AWS::Bedrock::Guardrailz"`,
			"BlockedInputMessaging and BlockedOutputsMessaging are required",
			`PiiEntitiesConfig[0].Action: want BLOCK, ANONYMIZE or NONE, got "MASK"`,
			`TopicsConfig[0]: topic "Salary" has no keywords in Metadata.tierq-simulator.TopicKeywords`,
			`TopicsConfig[1].Type: want DENY, got "ALLOW"`,
			`WordsConfig[0].Text: required`,
		},
	}, {
		name:    "keywords for a topic that does not exist",
		yaml:    definitionHead + salaryKeywords,
		wantErr: []string{`TopicKeywords: "Salary" is not a topic of TopicPolicyConfig`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, skipped, err := bedrocksim.ParseGuardrailDefinition([]byte(tt.yaml))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\ndoes not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("guardrail:\n got %+v\nwant %+v", got, tt.want)
			}
			if !slices.Equal(skipped, tt.wantSkipped) {
				t.Errorf("not simulated:\n got %q\nwant %q", skipped, tt.wantSkipped)
			}
		})
	}
}

// A guardrail parsed from a definition behaves as configured: its word
// policy blocks through the real SDK client.
func TestGuardrailFromDefinitionBlocksWords(t *testing.T) {
	t.Parallel()
	g, _, err := bedrocksim.ParseGuardrailDefinition([]byte(definitionHead + `  TopicPolicyConfig:
    TopicsConfig: [{Name: Salary, Type: DENY, Definition: Pay talks.}]
  WordPolicyConfig:
    WordsConfig: [{Text: Project Falcon}]
` + salaryKeywords))
	if err != nil {
		t.Fatal(err)
	}
	g.Versions = []string{"1"}
	cfg := bedrocksim.DefaultConfig()
	cfg.Guardrails["hr"] = g
	_, client, _ := start(t, cfg)
	for text, want := range map[string]types.GuardrailAction{
		"the project falcon budget":        types.GuardrailActionGuardrailIntervened,
		"our salary negotiation notes":     types.GuardrailActionGuardrailIntervened,
		"the falcon project, out of order": types.GuardrailActionNone,
	} {
		out, err := client.ApplyGuardrail(context.Background(), &bedrockruntime.ApplyGuardrailInput{
			GuardrailIdentifier: aws.String("hr"), GuardrailVersion: aws.String("1"), Source: types.GuardrailContentSourceInput,
			Content: []types.GuardrailContentBlock{&types.GuardrailContentBlockMemberText{Value: types.GuardrailTextBlock{Text: aws.String(text)}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if out.Action != want {
			t.Errorf("%q: action %s, want %s", text, out.Action, want)
		}
	}
}
