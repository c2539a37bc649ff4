package jobv1

import (
	"encoding/json"
	"time"
)

// ResultVersion is the result object version this package writes.
const ResultVersion = "1"

// Result statuses.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusBlocked   = "blocked"
)

// Statuses that are never a result's, only a metrics line's: the line of a
// delivery whose model calls were paid for but that wrote no result, so that
// every call made appears in a result or a metric. Superseded: another
// delivery's result was kept. Released: the job went back to the queue
// (transient trouble after a call, or shutdown), and its next delivery
// starts again.
const (
	StatusSuperseded = "superseded"
	StatusReleased   = "released"
)

// Result is result v1, written once per job to
// s3://{results bucket}/{prefix}{job_id}.json. The JSON Schema is
// jobv1/schema/result.v1.schema.json.
type Result struct {
	Version string `json:"version"`
	JobID   string `json:"job_id"`
	Status  string `json:"status"`
	Task    string `json:"task,omitempty"`
	// Tier, the rule that chose it and a sentence saying why. After an
	// escalation Tier and ModelID are the tier that produced Output: the
	// last one, or the one before it when the last escalation failed.
	Tier       string `json:"tier,omitempty"`
	TierRule   string `json:"tier_rule,omitempty"`
	TierReason string `json:"tier_reason,omitempty"`
	// ModelID is the model that answered: the tier's model, or its fallback
	// when the call spilled over (then it equals Spillover.To).
	ModelID string `json:"model_id,omitempty"`
	// Spillover is set when the call that produced Output (or, in a failed
	// result, the error) moved to the tier's fallback model because the
	// tier's model stayed throttled.
	Spillover *Spillover `json:"spillover,omitempty"`
	// ServiceTier is the Bedrock service tier that served the call that
	// produced Output (default, flex, priority or reserved), as Bedrock
	// reported it; empty when no call was answered.
	ServiceTier string `json:"service_tier,omitempty"`
	// Output is the answer: text, and for extract the parsed JSON as well.
	Output     *Output `json:"output,omitempty"`
	StopReason string  `json:"stop_reason,omitempty"`
	// Usage and Cost add up every model call made for the job; Calls has
	// them call by call.
	Usage Usage `json:"usage"`
	Cost  Cost  `json:"cost"`
	// Calls are the job's model calls in order: each answered call with
	// the model and service tier that served it and what it used and cost,
	// so an escalated or spilled-over job's tokens are attributed to the
	// model that spent them, and, before a spillover, the throttled
	// attempts on the model it left (Throttles only, no ServiceTier).
	Calls     []Call            `json:"calls,omitempty"`
	Guardrail *GuardrailOutcome `json:"guardrail,omitempty"`
	// Attempts counts model calls, throttled and failed ones included.
	Attempts    int               `json:"attempts"`
	Escalations []Escalation      `json:"escalations,omitempty"`
	Timings     Timings           `json:"timings"`
	Worker      WorkerInfo        `json:"worker"`
	Error       *ErrorInfo        `json:"error,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Output is a model's answer.
type Output struct {
	Text string `json:"text"`
	// JSON is set for extract when Text is a valid JSON object.
	JSON json.RawMessage `json:"json,omitempty"`
}

// GuardrailOutcome is what the guardrail did to the job.
type GuardrailOutcome struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	// Action is none, masked (PII anonymized, job went on) or blocked.
	Action string `json:"action"`
	// Policies that fired: sensitive_information, topic, content, word.
	Policies []string `json:"policies,omitempty"`
	// PIITypes detected, with what was done: EMAIL:ANONYMIZED, US_SOCIAL_SECURITY_NUMBER:BLOCKED.
	PIITypes []string `json:"pii_types,omitempty"`
	// Topics denied, and content filters (PROMPT_ATTACK) that blocked.
	Topics  []string `json:"topics,omitempty"`
	Filters []string `json:"filters,omitempty"`
	// TextUnits billed per policy, input and output together.
	TextUnits GuardrailUnits `json:"text_units"`
}

// Guardrail actions in GuardrailOutcome.Action.
const (
	GuardrailNone    = "none"
	GuardrailMasked  = "masked"
	GuardrailBlocked = "blocked"
)

// Escalation records one move to the next tier.
type Escalation struct {
	FromTier string `json:"from_tier"`
	ToTier   string `json:"to_tier"`
	Reason   string `json:"reason"`
	// Failed says why the next tier gave no answer (an error code and
	// message, or a transient error and the attempts made). The result then
	// carries the answer from FromTier.
	Failed string `json:"failed,omitempty"`
}

// Call is one model call made for a job: an answered one, or the
// throttled attempts on a tier's model before the call spilled over to its
// fallback (then ServiceTier is empty and Usage and Cost are zero).
type Call struct {
	// At is when the call was answered.
	At   time.Time `json:"at"`
	Tier string    `json:"tier"`
	// ModelID answered: the tier's model or, after a spillover, its fallback.
	ModelID string `json:"model_id"`
	// ServiceTier served the call, as Bedrock reported it (default when it
	// reported none); empty for throttled attempts that got no answer.
	ServiceTier string `json:"service_tier,omitempty"`
	// RequestedServiceTier is the tier asked for, when it was not default.
	RequestedServiceTier string `json:"requested_service_tier,omitempty"`
	// StructuredOutput is true when the answer was constrained to the
	// job's schema (Converse outputConfig.textFormat).
	StructuredOutput bool `json:"structured_output,omitempty"`
	// Fallback says what the model refused and was left out of the call
	// that answered (a service tier, structured output), with Bedrock's
	// reason.
	Fallback string `json:"fallback,omitempty"`
	// Throttles are the throttled attempts on ModelID before this answer.
	Throttles int   `json:"throttles"`
	Usage     Usage `json:"usage"`
	// Cost prices Usage at ModelID's prices for ServiceTier.
	Cost Cost `json:"cost"`
}

// Spillover records one model call moving to its tier's fallback model.
// The tier, and so its prices, prompts and guardrail, stay the same.
type Spillover struct {
	// From is the tier's model, To the fallback that took the call.
	From string `json:"from_model_id"`
	To   string `json:"to_model_id"`
	// After is how long, in milliseconds, the call had been throttled on
	// From when it moved (at least the tier's spillover_after).
	After int64 `json:"throttled_ms"`
}

// Timings of the job, in UTC and milliseconds.
type Timings struct {
	// EnqueuedAt is when SQS accepted the message (SentTimestamp).
	EnqueuedAt time.Time `json:"enqueued_at"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	QueueMs    int64     `json:"queue_ms"`
	// ModelMs is time spent in model calls, retries' backoff excluded.
	ModelMs int64 `json:"model_ms"`
	TotalMs int64 `json:"total_ms"`
}

// WorkerInfo identifies who produced the result.
type WorkerInfo struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	// ReceiveCount is how many times SQS had delivered the message.
	ReceiveCount int `json:"receive_count"`
}

// ErrorInfo explains a failed job to a person.
type ErrorInfo struct {
	// Code is stable, for automation: invalid_job, document_not_found,
	// document_too_large, bucket_not_allowed, too_large_for_tiers,
	// model_rejected, access_denied, resource_not_found, ...
	Code    string `json:"code"`
	Message string `json:"message"`
}
