package jobv1

import (
	"bytes"
	"encoding/json"
	"strings"
)

// What reaches the model from a job is part of the contract with upstream:
// the guardrail evaluates every part that came from the job (see
// PromptParts), and the system prompt carries nothing of it.

// UserIntro opens the user message: tierq's own words, the only text of the
// message that did not come from the job, so the message never consists of
// guarded content alone.
const UserIntro = "The job's instructions and parameters, if any, come first; the document is last."

// PromptParts are the texts of a job that reach the model, in prompt order:
// one part with the job's parameters (its instructions, then what the task
// needs to know: the labels to choose from, the fields or schema to
// extract), when it has any, and the document last. The parameters share one
// block because guardrail text units are billed per 1,000 characters of
// each block, rounded up: a block per parameter would bill several units for
// a few words.
func (job Job) PromptParts(doc string) []string {
	var params []string
	if inst := strings.TrimSpace(job.Instructions); inst != "" {
		params = append(params, inst)
	}
	switch job.Task {
	case TaskClassify:
		if len(job.Labels) > 0 {
			params = append(params, "Labels: "+joinTrimmed(job.Labels))
		}
	case TaskExtract:
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

func joinTrimmed(items []string) string {
	out := make([]string, 0, len(items))
	for _, s := range items {
		// One line per list: a newline inside a label would end the list.
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	return strings.Join(out, ", ")
}
