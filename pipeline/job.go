package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/tierq/tierq/tiering"
)

// JobVersion is the job message version this package reads.
const JobVersion = "1"

// Limits on a job message's fields. A job_id becomes part of an S3 key, so it
// is restricted to characters that need no escaping and cannot climb folders.
const (
	MaxJobIDLen          = 128
	MaxInstructionsBytes = 16 << 10
	MaxLabels            = 50
	MaxFields            = 100
	MaxMetadataKeys      = 32
	MaxMetadataValueLen  = 1024
	MaxOutputTokensLimit = 64_000
)

var jobIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Job is job message v1: one document job, the body of one SQS message.
// The JSON Schema is pipeline/schema/job.v1.schema.json.
type Job struct {
	Version string `json:"version"`
	// JobID is the idempotency key: one result object per job ID, ever.
	JobID string `json:"job_id"`
	// Task is summarize, classify, extract or custom.
	Task string `json:"task"`
	// Instructions are required for custom and optional otherwise.
	Instructions string `json:"instructions,omitempty"`
	// Text is the document inline; DocumentURI (s3://bucket/key) references a
	// document too large for a message. Exactly one is set.
	Text        string `json:"text,omitempty"`
	DocumentURI string `json:"document_uri,omitempty"`
	// TierOverride forces a tier; TierHint prefers one when the document fits.
	TierOverride string `json:"tier_override,omitempty"`
	TierHint     string `json:"tier_hint,omitempty"`
	// MaxOutputTokens caps the answer below the tier's limit.
	MaxOutputTokens int `json:"max_output_tokens,omitempty"`
	// Labels are the classes for classify (required there).
	Labels []string `json:"labels,omitempty"`
	// Fields or Schema name what extract returns (one of them required there).
	Fields []string        `json:"fields,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
	// Metadata is echoed into the result; "tenant" is used for cost reports.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Tenant is the job's metadata tenant, or "".
func (j Job) Tenant() string { return j.Metadata["tenant"] }

// Errors a job message can fail with. A message whose job ID is unusable
// cannot get a result object, so the worker dead-letters it (ErrMalformed,
// ErrUnsupportedVersion, ErrBadJobID); any other invalid field is reported in
// a failed result under the job's ID (ErrInvalidJob).
var (
	ErrMalformed          = errors.New("message is not a JSON job object")
	ErrUnsupportedVersion = errors.New("unsupported job version")
	ErrBadJobID           = errors.New("invalid job_id")
	ErrInvalidJob         = errors.New("invalid job")
)

// ParseJob decodes and validates a job message. On ErrInvalidJob the returned
// Job still carries the decoded fields (its JobID is valid), so the caller can
// write a failed result; on the other errors it is the zero Job.
func ParseJob(body []byte) (Job, error) {
	var probe struct {
		Version *string `json:"version"`
		JobID   *string `json:"job_id"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Job{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if probe.Version == nil {
		return Job{}, fmt.Errorf("%w: version is missing (want %q)", ErrUnsupportedVersion, JobVersion)
	}
	if *probe.Version != JobVersion {
		return Job{}, fmt.Errorf("%w %q (this worker reads %q)", ErrUnsupportedVersion, truncate(*probe.Version, 20), JobVersion)
	}
	if probe.JobID == nil || !jobIDRe.MatchString(*probe.JobID) {
		got := "missing"
		if probe.JobID != nil {
			got = fmt.Sprintf("%q", truncate(*probe.JobID, 40))
		}
		return Job{}, fmt.Errorf("%w: %s; want 1 to %d characters of A-Z a-z 0-9 . _ - starting with a letter or digit",
			ErrBadJobID, got, MaxJobIDLen)
	}
	var j Job
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Job{JobID: *probe.JobID, Version: JobVersion}, fmt.Errorf("%w: %v", ErrInvalidJob, err)
	}
	if err := j.Validate(); err != nil {
		return j, err
	}
	return j, nil
}

// Validate reports every problem with a decoded job at once, wrapped in ErrInvalidJob.
func (j Job) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch j.Task {
	case tiering.TaskSummarize, tiering.TaskClassify, tiering.TaskExtract, tiering.TaskCustom:
	case "":
		bad("task: required (summarize, classify, extract or custom)")
	default:
		bad("task: %q is not summarize, classify, extract or custom", truncate(j.Task, 40))
	}
	switch {
	case j.Text == "" && j.DocumentURI == "":
		bad("text or document_uri: one is required")
	case j.Text != "" && j.DocumentURI != "":
		bad("text and document_uri: set only one")
	case j.DocumentURI != "":
		if _, _, err := ParseS3URI(j.DocumentURI); err != nil {
			bad("document_uri: %v", err)
		}
	}
	if !utf8.ValidString(j.Text) {
		bad("text: not valid UTF-8")
	}
	if j.Task == tiering.TaskCustom && strings.TrimSpace(j.Instructions) == "" {
		bad("instructions: required for task custom")
	}
	if len(j.Instructions) > MaxInstructionsBytes {
		bad("instructions: %d bytes, more than %d", len(j.Instructions), MaxInstructionsBytes)
	}
	if j.Task == tiering.TaskClassify && len(j.Labels) < 2 {
		bad("labels: classify needs at least 2 labels")
	}
	if len(j.Labels) > MaxLabels {
		bad("labels: %d, more than %d", len(j.Labels), MaxLabels)
	}
	for i, l := range j.Labels {
		if strings.TrimSpace(l) == "" {
			bad("labels[%d]: empty", i)
		}
	}
	if j.Task == tiering.TaskExtract && len(j.Fields) == 0 && len(j.Schema) == 0 {
		bad("fields or schema: extract needs one")
	}
	if len(j.Fields) > MaxFields {
		bad("fields: %d, more than %d", len(j.Fields), MaxFields)
	}
	if len(j.Schema) > 0 {
		var obj map[string]any
		// null decodes into a nil map without error, and is no schema.
		if err := json.Unmarshal(j.Schema, &obj); err != nil || obj == nil {
			bad("schema: must be a JSON object")
		}
	}
	if j.MaxOutputTokens < 0 || j.MaxOutputTokens > MaxOutputTokensLimit {
		bad("max_output_tokens: %d is outside 1..%d", j.MaxOutputTokens, MaxOutputTokensLimit)
	}
	if len(j.Metadata) > MaxMetadataKeys {
		bad("metadata: %d keys, more than %d", len(j.Metadata), MaxMetadataKeys)
	}
	for k, v := range j.Metadata {
		if len(k) == 0 || len(k) > 128 || len(v) > MaxMetadataValueLen {
			bad("metadata[%q]: keys are 1 to 128 bytes and values at most %d bytes", truncate(k, 40), MaxMetadataValueLen)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidJob, errors.Join(errs...))
}

// ParseS3URI splits s3://bucket/key.
func ParseS3URI(uri string) (bucket, key string, err error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" || u.Host == "" || strings.TrimPrefix(u.Path, "/") == "" {
		return "", "", fmt.Errorf("%q is not s3://bucket/key", truncate(uri, 200))
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
