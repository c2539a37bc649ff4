package pipeline

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/jobv1"
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
		name      string
		job       jobv1.Job
		guardrail bool
		// parts are the guarded blocks after jobv1.UserIntro before the document:
		// at most one, with every parameter the job gave.
		parts     []string
		maxTokens int32
	}{
		{"summarize without instructions", jobv1.Job{Task: "summarize"}, true, nil, 4096},
		{"summarize with instructions", jobv1.Job{Task: "summarize", Instructions: " Be brief.\n"}, true, []string{"Be brief."}, 4096},
		{"classify lists the labels", jobv1.Job{Task: "classify", Labels: []string{"billing", " outage\nnow ", "other"}}, true,
			[]string{"Labels: billing, outage now, other"}, 4096},
		{"extract lists the fields", jobv1.Job{Task: "extract", Fields: []string{"customer", "total"}}, true,
			[]string{"Fields: customer, total"}, 4096},
		{"extract gives the schema", jobv1.Job{Task: "extract", Schema: json.RawMessage("{ \"type\": \"object\" }")}, true,
			[]string{"JSON schema: {\"type\":\"object\"}"}, 4096},
		{"extract with instructions, fields and schema", jobv1.Job{Task: "extract", Instructions: "Dates as ISO.", Fields: []string{"a"},
			Schema: json.RawMessage(`{"type":"object"}`)}, true,
			[]string{"Dates as ISO.\n\nFields: a\n\nJSON schema: {\"type\":\"object\"}"}, 4096},
		{"custom sends the instructions", jobv1.Job{Task: "custom", Instructions: "  List the risks.  "}, true, []string{"List the risks."}, 4096},
		{"the job's lower max_output_tokens wins", jobv1.Job{Task: "summarize", MaxOutputTokens: 300}, true, nil, 300},
		{"the tier's lower limit wins", jobv1.Job{Task: "summarize", MaxOutputTokens: 10000}, true, nil, 4096},
		{"no guardrail: every part is plain text", jobv1.Job{Task: "classify", Labels: []string{"a", "b"}}, false, []string{"Labels: a, b"}, 4096},
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
			// The system prompt is tierq's own, whatever the job says.
			sys := in.System[0].(*types.SystemContentBlockMemberText).Value
			if want := tier.SystemPrompt(tt.job.Task); sys != want {
				t.Errorf("system prompt\n got %q\nwant %q", sys, want)
			}
			parts := append(append([]string(nil), tt.parts...), doc)
			if len(in.Messages) != 1 || in.Messages[0].Role != types.ConversationRoleUser || len(in.Messages[0].Content) != 1+len(parts) {
				t.Fatalf("messages = %+v, want one user message with %d blocks", in.Messages, 1+len(parts))
			}
			blocks := in.Messages[0].Content
			if got := blocks[0].(*types.ContentBlockMemberText).Value; got != jobv1.UserIntro {
				t.Errorf("first block %q, want tierq's intro %q", got, jobv1.UserIntro)
			}
			for i, want := range parts {
				b := blocks[1+i]
				var got string
				if tt.guardrail {
					gc, ok := b.(*types.ContentBlockMemberGuardContent)
					if !ok {
						t.Fatalf("block %d (%q) is %T, want guardContent: every part from the job is guarded", 1+i, want, b)
					}
					got = aws.ToString(gc.Value.(*types.GuardrailConverseContentBlockMemberText).Value.Text)
				} else {
					tb, ok := b.(*types.ContentBlockMemberText)
					if !ok {
						t.Fatalf("block %d is %T, want plain text", 1+i, b)
					}
					got = tb.Value
				}
				if got != want {
					t.Errorf("block %d = %q, want %q", 1+i, got, want)
				}
			}
			if g := in.GuardrailConfig; tt.guardrail {
				if g == nil || aws.ToString(g.GuardrailIdentifier) != "tierq-default" || aws.ToString(g.GuardrailVersion) != "1" || g.Trace != types.GuardrailTraceEnabled {
					t.Errorf("guardrail config = %+v, want tierq-default 1 with trace enabled", g)
				}
			} else if g != nil {
				t.Error("guardrail config sent for a tier without a guardrail")
			}
			ic := in.InferenceConfig
			if ic == nil || aws.ToInt32(ic.MaxTokens) != tt.maxTokens || ic.Temperature == nil || *ic.Temperature != float32(tier.Temperature) {
				t.Errorf("inference config = %+v, want maxTokens %d and the tier's temperature", ic, tt.maxTokens)
			}
			est := tiering.EstimateTokens(sys) + tiering.EstimateTokens(jobv1.UserIntro)
			for _, p := range parts {
				est += tiering.EstimateTokens(p)
			}
			if req.reserve != est+int(tt.maxTokens) {
				t.Errorf("reserve = %d, want estimated input %d + maxTokens %d", req.reserve, est, tt.maxTokens)
			}
			if got, want := tiering.PromptTokens(tt.job, doc), est-tiering.EstimateTokens(sys); got != want {
				t.Errorf("PromptTokens = %d, want %d (every part but the system prompt)", got, want)
			}
		})
	}
}

// TestEveryJobTextIsGuarded checks that no byte of a job's own fields
// reaches the model outside guarded content: the system prompt and the
// unguarded blocks hold only tierq's words, whatever the job carries.
func TestEveryJobTextIsGuarded(t *testing.T) {
	t.Parallel()
	const marker = "QQMARKERQQ"
	jobs := []jobv1.Job{
		{Task: "custom", Instructions: marker},
		{Task: "classify", Labels: []string{marker, "b"}, Instructions: marker},
		{Task: "extract", Fields: []string{marker}, Instructions: marker},
		{Task: "extract", Schema: json.RawMessage(`{"type":"object","properties":{"` + marker + `":{"description":"` + marker + `"}}}`)},
		{Task: "summarize", Instructions: marker, Metadata: map[string]string{"tenant": marker}},
	}
	for _, job := range jobs {
		req := buildRequest(job, economy(t), marker)
		for _, s := range req.in.System {
			if v := s.(*types.SystemContentBlockMemberText).Value; strings.Contains(v, marker) {
				t.Errorf("task %s: job text in the system prompt %q", job.Task, v)
			}
		}
		for _, b := range req.in.Messages[0].Content {
			if tb, ok := b.(*types.ContentBlockMemberText); ok && strings.Contains(tb.Value, marker) {
				t.Errorf("task %s: job text outside guarded content: %q", job.Task, tb.Value)
			}
		}
	}
}
