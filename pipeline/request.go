package pipeline

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// request is one Converse call for a job on a tier.
type request struct {
	in        *bedrockruntime.ConverseInput
	maxTokens int
	// reserve is what Bedrock holds against the TPM quota while the call
	// runs (estimated input + maxTokens); the limiter is told the same.
	reserve int
}

// Optional request features a model may refuse with a ValidationException
// (see withoutFeature): the request then goes again once without it.
const (
	featureServiceTier = "service tier"
	featureStructured  = "structured output"
)

// features lists the optional features the request carries, in the order
// they are given up.
func (r request) features() []string {
	var fs []string
	if r.in.ServiceTier != nil {
		fs = append(fs, featureServiceTier)
	}
	if r.in.OutputConfig != nil {
		fs = append(fs, featureStructured)
	}
	return fs
}

// withoutFeature is the same request without one optional feature. Like
// withModel it copies the input.
func (r request) withoutFeature(f string) request {
	in := *r.in
	switch f {
	case featureServiceTier:
		in.ServiceTier = nil
	case featureStructured:
		in.OutputConfig = nil
	}
	r.in = &in
	return r
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
func maxTokens(job jobv1.Job, tier tiering.Tier) int {
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
// words stay outside: the tier's system prompt and jobv1.UserIntro.
func buildRequest(job jobv1.Job, tier tiering.Tier, doc string) request {
	system := tier.SystemPrompt(job.Task)
	parts := job.PromptParts(doc)
	guarded := tier.Guardrail.Enabled()
	content := make([]types.ContentBlock, 0, len(parts)+1)
	content = append(content, &types.ContentBlockMemberText{Value: jobv1.UserIntro})
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
	if tiering.CachedPrefixTokens(tier, job.Task) > 0 {
		// The system prompt is tierq's own and the same for every job of
		// the task on the tier: the prefix worth caching. It is the only
		// cache point, so the TTL order Bedrock requires (tools, then
		// system, then messages, never increasing) holds.
		ttl := types.CacheTTLFiveMinutes
		if tier.PromptCache.TTL == tiering.CacheTTL1h {
			ttl = types.CacheTTLOneHour
		}
		in.System = append(in.System, &types.SystemContentBlockMemberCachePoint{
			Value: types.CachePointBlock{Type: types.CachePointTypeDefault, Ttl: ttl}})
	}
	if st := tier.RequestedServiceTier(); st != "" {
		in.ServiceTier = &types.ServiceTier{Type: types.ServiceTierType(st)}
	}
	if job.Task == jobv1.TaskExtract && len(job.Schema) > 0 && tier.StructuredOutputs {
		// Constrained decoding to the job's schema. The answer still comes
		// back as text, so the guardrail evaluates it and tierq validates it
		// as it does any extract answer.
		in.OutputConfig = &types.OutputConfig{TextFormat: &types.OutputFormat{
			Type: types.OutputFormatTypeJsonSchema,
			Structure: &types.OutputFormatStructureMemberJsonSchema{Value: types.JsonSchemaDefinition{
				Schema: aws.String(string(job.Schema)),
				Name:   aws.String("extraction"),
			}},
		}}
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
	est := tiering.EstimateTokens(system) + tiering.PartsTokens(parts)
	return request{in: in, maxTokens: mt, reserve: est + mt}
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
func callUsage(out *bedrockruntime.ConverseOutput, g *jobv1.GuardrailOutcome) tiering.Usage {
	var u tiering.Usage
	if t := out.Usage; t != nil {
		u.InputTokens = int(deref(t.InputTokens))
		u.OutputTokens = int(deref(t.OutputTokens))
		u.CacheReadTokens = int(deref(t.CacheReadInputTokens))
		u.CacheWriteTokens = int(deref(t.CacheWriteInputTokens))
		// cacheDetails splits the writes by TTL, which are priced apart;
		// without it every write is taken as a 5-minute one.
		for _, d := range t.CacheDetails {
			if d.Ttl == types.CacheTTLOneHour {
				u.CacheWrite1hTokens += int(deref(d.InputTokens))
			}
		}
		u.CacheWrite1hTokens = min(u.CacheWrite1hTokens, u.CacheWriteTokens)
	}
	if g != nil {
		u.GuardrailUnits = g.TextUnits
	}
	return u
}

// modelOf is the model a request goes to, for messages.
func modelOf(r request) string { return aws.ToString(r.in.ModelId) }

// servedTier is the service tier Bedrock says served the call; default
// when it says none.
func servedTier(out *bedrockruntime.ConverseOutput) string {
	if out.ServiceTier == nil || out.ServiceTier.Type == "" {
		return tiering.ServiceTierDefault
	}
	return string(out.ServiceTier.Type)
}
