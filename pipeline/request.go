package pipeline

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/tiering"
)

// noInstructions opens the user message of a job without instructions, so
// the message never consists of the guarded document alone.
const noInstructions = "The document follows."

// request is one Converse call for a job on a tier.
type request struct {
	in        *bedrockruntime.ConverseInput
	maxTokens int
	// reserve is what Bedrock holds against the TPM quota while the call
	// runs (estimated input + maxTokens); the limiter is told the same.
	reserve int
}

// withModel is the same request sent to another model ID. The input is
// copied, not changed: it may already have been handed to the SDK (and to
// test fakes that keep it).
func (r request) withModel(model string) request {
	in := *r.in
	in.ModelId = aws.String(model)
	r.in = &in
	return r
}

// maxTokens is the answer limit for a job on a tier: the tier's limit, or
// the job's if lower. It is always sent, because Bedrock reserves the
// model's maximum against the token quota when it is not.
func maxTokens(job Job, tier tiering.Tier) int {
	if job.MaxOutputTokens > 0 && job.MaxOutputTokens < tier.MaxOutputTokens {
		return job.MaxOutputTokens
	}
	return tier.MaxOutputTokens
}

// buildRequest builds the Converse request. The document goes in a
// guardContent block: with any guardContent present, the guardrail evaluates
// only those blocks, so our own prompts and the job's instructions are not
// billed as guardrail text units nor able to trip a denied topic.
func buildRequest(job Job, tier tiering.Tier, doc string) request {
	system := systemPrompt(job, tier)
	inst := strings.TrimSpace(job.Instructions)
	if inst == "" {
		inst = noInstructions
	}
	content := []types.ContentBlock{&types.ContentBlockMemberText{Value: inst}}
	in := &bedrockruntime.ConverseInput{
		ModelId: aws.String(tier.ModelID),
		System:  []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: system}},
	}
	if g := tier.Guardrail; g.Enabled() {
		content = append(content, &types.ContentBlockMemberGuardContent{Value: &types.GuardrailConverseContentBlockMemberText{
			Value: types.GuardrailConverseTextBlock{
				Text:       aws.String(doc),
				Qualifiers: []types.GuardrailConverseContentQualifier{types.GuardrailConverseContentQualifierGuardContent},
			},
		}})
		in.GuardrailConfig = &types.GuardrailConfiguration{
			GuardrailIdentifier: aws.String(g.ID),
			GuardrailVersion:    aws.String(g.Version),
			// The trace is how a mask is told from a block (see guardrailOutcome)
			// and where guardrail text units, which are billed, are reported.
			Trace: types.GuardrailTraceEnabled,
		}
	} else {
		content = append(content, &types.ContentBlockMemberText{Value: doc})
	}
	in.Messages = []types.Message{{Role: types.ConversationRoleUser, Content: content}}
	mt := maxTokens(job, tier)
	in.InferenceConfig = &types.InferenceConfiguration{
		MaxTokens:   aws.Int32(int32(mt)),
		Temperature: aws.Float32(float32(tier.Temperature)),
	}
	est := tiering.EstimateTokens(system) + tiering.EstimateTokens(inst) + tiering.EstimateTokens(doc)
	return request{in: in, maxTokens: mt, reserve: est + mt}
}

// systemPrompt is the tier's prompt for the task plus what the task needs to
// know from the job: the labels to choose from, the fields to extract.
func systemPrompt(job Job, tier tiering.Tier) string {
	var b strings.Builder
	b.WriteString(tier.SystemPrompt(job.Task))
	switch job.Task {
	case tiering.TaskClassify:
		b.WriteString("\n\nLabels: ")
		b.WriteString(joinTrimmed(job.Labels))
	case tiering.TaskExtract:
		if len(job.Fields) > 0 {
			b.WriteString("\n\nFields: ")
			b.WriteString(joinTrimmed(job.Fields))
		}
		if len(job.Schema) > 0 {
			var compact bytes.Buffer
			if json.Compact(&compact, job.Schema) == nil {
				b.WriteString("\n\nJSON schema: ")
				b.Write(compact.Bytes())
			}
		}
	}
	return b.String()
}

func joinTrimmed(items []string) string {
	out := make([]string, 0, len(items))
	for _, s := range items {
		// One line per list: a newline inside a label would end the list.
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	return strings.Join(out, ", ")
}

// outputText is the answer's text blocks joined.
func outputText(out *bedrockruntime.ConverseOutput) string {
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, c := range msg.Value.Content {
		if t, ok := c.(*types.ContentBlockMemberText); ok {
			b.WriteString(t.Value)
		}
	}
	return b.String()
}

// callUsage is the usage Bedrock reported for one call, guardrail text units
// included.
func callUsage(out *bedrockruntime.ConverseOutput, g *GuardrailOutcome) tiering.Usage {
	var u tiering.Usage
	if t := out.Usage; t != nil {
		u.InputTokens = int(deref(t.InputTokens))
		u.OutputTokens = int(deref(t.OutputTokens))
		u.CacheReadTokens = int(deref(t.CacheReadInputTokens))
		u.CacheWriteTokens = int(deref(t.CacheWriteInputTokens))
	}
	if g != nil {
		u.GuardrailUnits = g.TextUnits
	}
	return u
}
