package tiering

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// StopReasonMaxTokens is the Bedrock Converse stop reason for an answer cut
// off at maxTokens.
const StopReasonMaxTokens = "max_tokens"

// Next returns the tier after the named one, the target of an escalation.
// It reports false for the last tier and for an unknown name.
func (c *Config) Next(tier string) (Tier, bool) {
	i := c.index(tier)
	if i < 0 || i+1 >= len(c.Tiers) {
		return Tier{}, false
	}
	return c.Tiers[i+1], true
}

// ShouldEscalate decides whether an answer from tier should be retried on
// the next tier, and says why or why not. step is the number of escalations
// this job has already had (0 for the first attempt).
//
// It escalates when the answer stopped at max_tokens (the next tier allows a
// longer answer), or when an extract task's answer is not a JSON object by
// ExtractJSONObject (a more capable model follows the format more reliably),
// each only if enabled in Escalation, while steps remain and a next tier
// exists.
func (c *Config) ShouldEscalate(tier, stopReason, task, output string, step int) (bool, string) {
	var cause string
	switch {
	case stopReason == StopReasonMaxTokens && c.Escalation.OnMaxTokens:
		cause = "answer stopped at max_tokens"
	case task == TaskExtract && c.Escalation.OnInvalidJSON && !isJSONObject(output):
		// Worded before only objects counted; kept, as results and the
		// package example carry it.
		cause = "extract answer is not valid JSON"
	default:
		return false, fmt.Sprintf("no escalation condition met (stop reason %s)", stopReason)
	}
	return c.escalate(tier, cause, step)
}

// ShouldEscalateMismatch decides whether an extract answer that is a JSON
// object but does not match the job's own schema should be retried on the
// next tier: the same rule as an answer that is not JSON at all
// (Escalation.OnInvalidJSON), with the same limits on steps.
func (c *Config) ShouldEscalateMismatch(tier string, step int) (bool, string) {
	const cause = "extract answer does not match the job's schema"
	if !c.Escalation.OnInvalidJSON {
		return false, cause + ", but escalation on invalid JSON is off"
	}
	return c.escalate(tier, cause, step)
}

// escalate says whether an answer with a cause to escalate may move on from
// tier: escalation enabled, steps left, a next tier.
func (c *Config) escalate(tier, cause string, step int) (bool, string) {
	next, ok := c.Next(tier)
	switch {
	case !c.Escalation.Enabled:
		return false, cause + ", but escalation is disabled"
	case step >= c.Escalation.MaxSteps:
		return false, fmt.Sprintf("%s, but the job already escalated %d time(s) (escalation.max_steps %d)", cause, step, c.Escalation.MaxSteps)
	case !ok:
		return false, fmt.Sprintf("%s on tier %s, which has no next tier", cause, tier)
	}
	return true, fmt.Sprintf("%s on tier %s; retrying on %s", cause, tier, next.Name)
}

// canEscalate reports whether any escalation condition can fire for a task,
// which bounds the worst-case cost of a dry run.
func (c *Config) canEscalate(task string) bool {
	e := c.Escalation
	return e.Enabled && (e.OnMaxTokens || (e.OnInvalidJSON && task == TaskExtract))
}

func isJSONObject(output string) bool {
	_, ok := ExtractJSONObject(output)
	return ok
}

// ExtractJSONObject returns an extract answer as a compact JSON object, and
// whether it is one, once surrounding whitespace and one Markdown code fence
// (``` or ```json, any case) are removed: models add the fence even when told
// not to, and the object inside is still usable.
//
// Only an object counts. An extract job asks for named fields, so an array,
// a string such as "n/a" or a number is an answer that did not follow the
// format: it is escalated like prose, and never stored as the parsed answer.
// Escalation and the stored result use this one function so that they cannot
// disagree about what a usable answer is.
func ExtractJSONObject(output string) (json.RawMessage, bool) {
	s := strings.TrimSpace(output)
	if rest, ok := strings.CutPrefix(s, "```"); ok {
		tag, body, ok := strings.Cut(rest, "\n")
		body, closed := strings.CutSuffix(strings.TrimSpace(body), "```")
		if tag = strings.TrimSpace(tag); !ok || !closed || (tag != "" && !strings.EqualFold(tag, "json")) {
			return nil, false
		}
		s = strings.TrimSpace(body)
	}
	if !strings.HasPrefix(s, "{") {
		return nil, false
	}
	// Compact also validates: it rejects a truncated object and anything
	// after the object, such as a second object or a closing remark.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(s)); err != nil {
		return nil, false
	}
	return compact.Bytes(), true
}
