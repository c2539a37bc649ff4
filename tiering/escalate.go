package tiering

import (
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
// longer answer), or when an extract task's answer is not valid JSON (a more
// capable model follows the format more reliably), each only if enabled in
// Escalation, while steps remain and a next tier exists.
func (c *Config) ShouldEscalate(tier, stopReason, task, output string, step int) (bool, string) {
	var cause string
	switch {
	case stopReason == StopReasonMaxTokens && c.Escalation.OnMaxTokens:
		cause = "answer stopped at max_tokens"
	case task == TaskExtract && c.Escalation.OnInvalidJSON && !validJSON(output):
		cause = "extract answer is not valid JSON"
	default:
		return false, fmt.Sprintf("no escalation condition met (stop reason %s)", stopReason)
	}
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

// validJSON reports whether s is JSON once surrounding space and an optional
// Markdown code fence (``` or ```json) are removed. Models add the fence
// even when told not to, and the JSON inside is still usable.
func validJSON(s string) bool {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "```"); ok {
		tag, body, ok := strings.Cut(rest, "\n")
		if tag = strings.TrimSpace(tag); tag != "" && !strings.EqualFold(tag, "json") {
			return false
		}
		body, closed := strings.CutSuffix(body, "```")
		if !ok || !closed {
			return false
		}
		s = strings.TrimSpace(body)
	}
	return s != "" && json.Valid([]byte(s))
}
