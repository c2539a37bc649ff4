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

// userIntro opens the user message: tierq's own words, the only text of the
// message that did not come from the job, so the message never consists of
// guarded content alone.
const userIntro = "The job's instructions and parameters, if any, come first; the document is last."

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

// buildRequest builds the Converse request.
//
// Everything that came from the job message and reaches the model (its
// instructions, labels, fields, extract schema and the document) goes in
// guardContent blocks, one per part: with any guardContent present the
// guardrail evaluates only those blocks, so a part left outside would reach
// the model unchecked (PII or an injection phrase in the instructions would
// pass while the same text in the document is blocked). Only tierq's own
// words stay outside: the tier's system prompt and userIntro.
func buildRequest(job Job, tier tiering.Tier, doc string) request {
	system := tier.SystemPrompt(job.Task)
	parts := jobParts(job, doc)
	guarded := tier.Guardrail.Enabled()
	content := make([]types.ContentBlock, 0, len(parts)+1)
	content = append(content, &types.ContentBlockMemberText{Value: userIntro})
	for _, p := range parts {
		if guarded {
			content = append(content, &types.ContentBlockMemberGuardContent{Value: &types.GuardrailConverseContentBlockMemberText{
				Value: types.GuardrailConverseTextBlock{
					Text:       aws.String(p),
					Qualifiers: []types.GuardrailConverseContentQualifier{types.GuardrailConverseContentQualifierGuardContent},
				},
			}})
		} else {
			content = append(content, &types.ContentBlockMemberText{Value: p})
		}
	}
	in := &bedrockruntime.ConverseInput{
		ModelId:  aws.String(tier.ModelID),
		System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: system}},
		Messages: []types.Message{{Role: types.ConversationRoleUser, Content: content}},
	}
	if g := tier.Guardrail; guarded {
		in.GuardrailConfig = &types.GuardrailConfiguration{
			GuardrailIdentifier: aws.String(g.ID),
			GuardrailVersion:    aws.String(g.Version),
			// The trace is how a mask is told from a block (see guardrailOutcome)
			// and where guardrail text units, which are billed, are reported.
			Trace: types.GuardrailTraceEnabled,
		}
	}
	mt := maxTokens(job, tier)
	in.InferenceConfig = &types.InferenceConfiguration{
		MaxTokens:   aws.Int32(int32(mt)),
		Temperature: aws.Float32(float32(tier.Temperature)),
	}
	est := tiering.EstimateTokens(system) + partsTokens(parts)
	return request{in: in, maxTokens: mt, reserve: est + mt}
}

// jobParts are the texts of a job that reach the model, in prompt order:
// one part with the job's parameters (its instructions, then what the task
// needs to know: the labels to choose from, the fields or schema to
// extract), when it has any, and the document last. The parameters share one
// block because guardrail text units are billed per 1,000 characters of
// each block, rounded up: a block per parameter would bill several units for
// a few words.
func jobParts(job Job, doc string) []string {
	var params []string
	if inst := strings.TrimSpace(job.Instructions); inst != "" {
		params = append(params, inst)
	}
	switch job.Task {
	case tiering.TaskClassify:
		if len(job.Labels) > 0 {
			params = append(params, "Labels: "+joinTrimmed(job.Labels))
		}
	case tiering.TaskExtract:
		if len(job.Fields) > 0 {
			params = append(params, "Fields: "+joinTrimmed(job.Fields))
		}
		if text, ok := schemaText(job.Schema); ok {
			params = append(params, "JSON schema: "+text)
		}
	}
	if len(params) == 0 {
		return []string{doc}
	}
	return []string{strings.Join(params, "\n\n"), doc}
}

// schemaText is an extract schema as the model and the guardrail both read
// it: decoded and encoded again, so that a \u escape in the message (which
// a model reads as the character it stands for, but a guardrail reads as
// six characters) arrives as its character; only the characters JSON must
// escape stay escaped. Sending the message's bytes as they are would let
// "\u0031\u0032\u0033-\u0034\u0035-..." carry an SSN past the guardrail.
func schemaText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	v, err := decodeValue(raw)
	if err != nil {
		return "", false
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return "", false
	}
	return strings.TrimSuffix(b.String(), "\n"), true
}

// partsTokens estimates the input tokens of the user message: userIntro and
// every part.
func partsTokens(parts []string) int {
	n := tiering.EstimateTokens(userIntro)
	for _, p := range parts {
		n += tiering.EstimateTokens(p)
	}
	return n
}

// PromptTokens estimates the input tokens a job puts in its prompt, the
// document and every other part that came from the job (instructions,
// labels, fields, schema), without the tier's system prompt (tiering adds
// that per tier). Tiering and dry runs count with it, so a 6-token document
// with a 700 KB schema is not mistaken for a small job.
func PromptTokens(job Job, doc string) int { return partsTokens(jobParts(job, doc)) }

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
