package pipeline

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/tiering"
)

func economy(t *testing.T) tiering.Tier {
	t.Helper()
	tier, ok := tiering.Default().Tier("economy")
	if !ok {
		t.Fatal("no economy tier")
	}
	return tier
}

func TestBuildRequest(t *testing.T) {
	t.Parallel()
	const doc = "The document text."
	tests := []struct {
		name         string
		job          Job
		guardrail    bool
		systemSuffix string
		userText     string
		maxTokens    int32
	}{
		{"summarize without instructions", Job{Task: "summarize"}, true, "", noInstructions, 4096},
		{"classify lists the labels", Job{Task: "classify", Labels: []string{"billing", " outage\nnow ", "other"}}, true,
			"\n\nLabels: billing, outage now, other", noInstructions, 4096},
		{"extract lists the fields", Job{Task: "extract", Fields: []string{"customer", "total"}}, true,
			"\n\nFields: customer, total", noInstructions, 4096},
		{"extract gives the schema", Job{Task: "extract", Schema: json.RawMessage("{ \"type\": \"object\" }")}, true,
			"\n\nJSON schema: {\"type\":\"object\"}", noInstructions, 4096},
		{"custom sends the instructions", Job{Task: "custom", Instructions: "  List the risks.  "}, true, "", "List the risks.", 4096},
		{"the job's lower max_output_tokens wins", Job{Task: "summarize", MaxOutputTokens: 300}, true, "", noInstructions, 300},
		{"the tier's lower limit wins", Job{Task: "summarize", MaxOutputTokens: 10000}, true, "", noInstructions, 4096},
		{"no guardrail: the document is plain text", Job{Task: "summarize"}, false, "", noInstructions, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tier := economy(t)
			if !tt.guardrail {
				tier.Guardrail = tiering.GuardrailRef{}
			}
			req := buildRequest(tt.job, tier, doc)
			in := req.in
			if aws.ToString(in.ModelId) != tier.ModelID {
				t.Errorf("model %q, want %q", aws.ToString(in.ModelId), tier.ModelID)
			}
			sys := in.System[0].(*types.SystemContentBlockMemberText).Value
			if want := tier.SystemPrompt(tt.job.Task) + tt.systemSuffix; sys != want {
				t.Errorf("system prompt\n got %q\nwant %q", sys, want)
			}
			if len(in.Messages) != 1 || in.Messages[0].Role != types.ConversationRoleUser || len(in.Messages[0].Content) != 2 {
				t.Fatalf("messages = %+v, want one user message with two blocks", in.Messages)
			}
			blocks := in.Messages[0].Content
			if got := blocks[0].(*types.ContentBlockMemberText).Value; got != tt.userText {
				t.Errorf("user text %q, want %q", got, tt.userText)
			}
			if tt.guardrail {
				gc, ok := blocks[1].(*types.ContentBlockMemberGuardContent)
				if !ok {
					t.Fatalf("document block is %T, want guardContent", blocks[1])
				}
				if got := aws.ToString(gc.Value.(*types.GuardrailConverseContentBlockMemberText).Value.Text); got != doc {
					t.Errorf("guarded text %q, want the document", got)
				}
				g := in.GuardrailConfig
				if g == nil || aws.ToString(g.GuardrailIdentifier) != "tierq-default" || aws.ToString(g.GuardrailVersion) != "1" || g.Trace != types.GuardrailTraceEnabled {
					t.Errorf("guardrail config = %+v, want tierq-default 1 with trace enabled", g)
				}
			} else {
				if got, ok := blocks[1].(*types.ContentBlockMemberText); !ok || got.Value != doc {
					t.Errorf("document block = %#v, want plain text", blocks[1])
				}
				if in.GuardrailConfig != nil {
					t.Error("guardrail config sent for a tier without a guardrail")
				}
			}
			ic := in.InferenceConfig
			if ic == nil || aws.ToInt32(ic.MaxTokens) != tt.maxTokens || ic.Temperature == nil || *ic.Temperature != float32(tier.Temperature) {
				t.Errorf("inference config = %+v, want maxTokens %d and the tier's temperature", ic, tt.maxTokens)
			}
			est := tiering.EstimateTokens(sys) + tiering.EstimateTokens(tt.userText) + tiering.EstimateTokens(doc)
			if req.reserve != est+int(tt.maxTokens) {
				t.Errorf("reserve = %d, want estimated input %d + maxTokens %d", req.reserve, est, tt.maxTokens)
			}
		})
	}
}

func TestSystemPromptSkipsAnUnusableSchema(t *testing.T) {
	t.Parallel()
	got := systemPrompt(Job{Task: "extract", Fields: []string{"a"}, Schema: json.RawMessage(`{bad`)}, economy(t))
	if strings.Contains(got, "JSON schema") || !strings.HasSuffix(got, "Fields: a") {
		t.Errorf("system prompt %q, want the fields and no broken schema", got)
	}
}
