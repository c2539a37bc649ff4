package pipeline

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tierq/tierq/tiering"
)

// Defaults for Config fields left at their zero value.
const (
	DefaultResultsPrefix    = "results/"
	DefaultMaxDocumentBytes = 8 << 20
	DefaultMetricsNamespace = "tierq"
	DefaultVersion          = "dev"

	DefaultRetryMaxAttempts = 4
	DefaultRetryBase        = 500 * time.Millisecond
	DefaultRetryCap         = 8 * time.Second
	DefaultRetryMaxSnooze   = 5 * time.Minute

	DefaultCallTimeout        = 10 * time.Minute
	DefaultS3Timeout          = time.Minute
	DefaultResultWriteTimeout = 30 * time.Second
	DefaultClaimLease         = 30 * time.Second
)

// minClaimLease is the shortest claim lease: it is renewed every third of
// itself, and each renewal is a request to S3 that must fit in that third.
const minClaimLease = time.Second

// maxReleaseDelay is SQS's longest visibility timeout (12 hours).
const maxReleaseDelay = 12 * time.Hour

// Config configures a Pipeline. Zero values mean the documented default;
// ApplyDefaults fills them in and New calls it.
type Config struct {
	// ResultsBucket receives one result object per job. Required.
	ResultsBucket string
	// ResultsPrefix is prepended to "{job_id}.json". Default "results/".
	// An empty prefix means the default: results never share the bucket root
	// with other objects by accident.
	ResultsPrefix string
	// InputBuckets are the buckets a job may reference with document_uri.
	// Empty means no job may reference a document: a worker must never read
	// whatever bucket a message names with its own credentials.
	InputBuckets []string
	// MaxDocumentBytes bounds a document, inline or by reference.
	// Default 8 MiB.
	MaxDocumentBytes int64
	// Retry bounds the in-process retries of transient model errors.
	Retry RetryConfig
	// CallTimeout bounds one Converse attempt; a call that times out is a
	// transient error, retried like a 5xx. Default 10m. It is generous on
	// purpose: Converse returns nothing until the whole answer is written,
	// and a long Claude answer (the default premium tier allows 16,384 output
	// tokens; at a few dozen tokens a second) takes several minutes; cutting
	// it off pays for the tokens and gets nothing. What it prevents is a stalled connection holding a worker slot
	// and the message's visibility (kept alive by the heartbeat) for up to
	// SQS's 12 hours.
	CallTimeout time.Duration
	// S3Timeout bounds each S3 read: the HeadObject that checks for a result,
	// and the GetObject of a document including reading its body.
	// Default 1m.
	S3Timeout time.Duration
	// ResultWriteTimeout bounds writing the result, all in-process retries
	// included. The write runs even after the job's context is cancelled at
	// the end of the worker's drain window: by then the model has been paid
	// for, and a result that lands late is still found by the next delivery's
	// check, while a result not written means paying for the model again.
	// Default 30s.
	ResultWriteTimeout time.Duration
	// ClaimLease is how long a job's claim keeps other deliveries of the job
	// from calling the model (see claim.go); the holder renews it every third
	// of it while the job runs. It bounds how long a job whose worker was
	// killed stays blocked. Default 30s, the worker's default visibility
	// timeout: a killed worker's message is back on the queue about when its
	// claim ends. A lease longer than the visibility timeout would defer the
	// redelivered message until the claim ends; a shorter one costs more
	// renewals (one PutObject per lease/3 of a running job: 6 per job-minute
	// at 30s, 3 at 60s).
	ClaimLease time.Duration
	// MetricsNamespace is the CloudWatch namespace of the EMF lines.
	// Default "tierq".
	MetricsNamespace string
	// WorkerID names this worker in results. Default: the host name.
	WorkerID string
	// Version is the worker's build version, recorded in results.
	// Default "dev".
	Version string
	// Tiers is the tier configuration (models, prompts, guardrails, prices).
	// Required.
	Tiers *tiering.Config
}

// RetryConfig bounds retries of transient model errors (throttling, 5xx,
// timeouts, network errors) inside one delivery of a message.
//
// Retries happen in-process first because a retry a second later is far
// cheaper than a round trip through the queue; but a worker slot held while a
// model is saturated serves nobody, so after MaxAttempts the message is
// released for the worker's release delay and the slot goes to other work.
type RetryConfig struct {
	// MaxAttempts is the most failed model calls per tier per delivery,
	// throttles not counted (MaxSnooze bounds those). Default 4; 1 means no
	// in-process retry.
	MaxAttempts int
	// Base is the first backoff; each retry doubles it, with full jitter.
	// Default 500ms.
	Base time.Duration
	// Cap is the largest backoff. Default 8s.
	Cap time.Duration
	// MaxSnooze is the longest one delivery waits out throttling. Throttles
	// spend no attempt (the model is busy, the job is fine): the job waits
	// for the limiter while the worker's heartbeat keeps the message
	// invisible, and only past MaxSnooze is the message released for the
	// worker's release delay. Default 5m. A tier's spillover delay counts
	// from the same first throttle, so it must be shorter.
	MaxSnooze time.Duration
}

// ApplyDefaults fills every field left at its zero value with its default.
func (c *Config) ApplyDefaults() {
	if c.ResultsPrefix == "" {
		c.ResultsPrefix = DefaultResultsPrefix
	}
	if c.MaxDocumentBytes == 0 {
		c.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if c.MetricsNamespace == "" {
		c.MetricsNamespace = DefaultMetricsNamespace
	}
	if c.WorkerID == "" {
		c.WorkerID = hostname()
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.S3Timeout == 0 {
		c.S3Timeout = DefaultS3Timeout
	}
	if c.ResultWriteTimeout == 0 {
		c.ResultWriteTimeout = DefaultResultWriteTimeout
	}
	if c.ClaimLease == 0 {
		c.ClaimLease = DefaultClaimLease
	}
	r := &c.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultRetryMaxAttempts
	}
	if r.Base == 0 {
		r.Base = DefaultRetryBase
	}
	if r.Cap == 0 {
		r.Cap = DefaultRetryCap
	}
	if r.MaxSnooze == 0 {
		r.MaxSnooze = DefaultRetryMaxSnooze
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// FieldError is a problem with one Config field. Validate joins one per
// problem, so a caller that fills Config from its own settings (flags,
// environment) can say which of its settings is wrong: errors.As over the
// joined error's Unwrap() []error finds each.
type FieldError struct {
	// Field is the Config field's name, with a dot into Retry:
	// "ResultsBucket", "Retry.MaxSnooze", "Tiers".
	Field string
	// Name is how the message names the field ("results bucket").
	Name string
	// Problem says what is wrong and what is allowed ("required"), with
	// the item at fault for a list ("[1] \"s3://x\" is not a bucket name").
	// It reads on its own after the name of whatever setting fills Field.
	Problem string
	// Err is the underlying error, if any (the tier configuration's).
	Err error
}

func (e *FieldError) Error() string { return e.Name + ": " + e.Problem }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem at once, one *FieldError each. Fields left
// at zero count as their defaults, so Validate can run before or after
// ApplyDefaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, name, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Name: name, Problem: fmt.Sprintf(format, args...)})
	}
	if c.ResultsBucket == "" {
		bad("ResultsBucket", "results bucket", "required")
	}
	if strings.HasPrefix(c.ResultsPrefix, "/") {
		bad("ResultsPrefix", "results prefix", "%q must not start with /", c.ResultsPrefix)
	}
	for i, b := range c.InputBuckets {
		if b == "" || strings.ContainsAny(b, "/ ") {
			bad("InputBuckets", "input buckets", "[%d] %q is not a bucket name", i, b)
		}
	}
	if c.MaxDocumentBytes < 0 {
		bad("MaxDocumentBytes", "max document bytes", "must be positive (got %d)", c.MaxDocumentBytes)
	}
	if c.CallTimeout < 0 {
		bad("CallTimeout", "call timeout", "must not be negative (got %s)", c.CallTimeout)
	}
	if c.S3Timeout < 0 {
		bad("S3Timeout", "S3 timeout", "must not be negative (got %s)", c.S3Timeout)
	}
	if c.ResultWriteTimeout < 0 {
		bad("ResultWriteTimeout", "result write timeout", "must not be negative (got %s)", c.ResultWriteTimeout)
	}
	if c.ClaimLease != 0 && (c.ClaimLease < minClaimLease || c.ClaimLease > maxReleaseDelay) {
		bad("ClaimLease", "claim lease", "must be between %s and %s (SQS's longest delay), got %s", minClaimLease, maxReleaseDelay, c.ClaimLease)
	}
	r := c.Retry
	if r.MaxAttempts < 0 {
		bad("Retry.MaxAttempts", "retry max attempts", "must be at least 1 (got %d)", r.MaxAttempts)
	}
	if r.Base < 0 || r.Cap < 0 {
		bad("Retry.Base", "retry base and cap", "must not be negative (got %s, %s)", r.Base, r.Cap)
	}
	if r.Base > 0 && r.Cap > 0 && r.Cap < r.Base {
		bad("Retry.Cap", "retry cap", "%s is below retry base %s", r.Cap, r.Base)
	}
	if c.Tiers == nil {
		bad("Tiers", "tiers", "required (tiering.Default() or tiering.Load)")
	} else if err := c.Tiers.Validate(); err != nil {
		errs = append(errs, &FieldError{Field: "Tiers", Name: "tiers", Problem: err.Error(), Err: err})
	} else {
		snooze := r.MaxSnooze
		if snooze == 0 {
			snooze = DefaultRetryMaxSnooze
		}
		for i, t := range c.Tiers.Tiers {
			// The snooze budget counts from the same first throttle, so a
			// longer delay would release every throttled job before it could
			// spill over, and the fallback would never be used.
			if t.HasFallback() && t.SpilloverDelay() >= snooze {
				bad("Tiers", "tiers", "tiers[%d] (%s) spillover_after %s: must be shorter than retry max snooze %s, or throttled jobs are released before they spill over",
					i, t.Name, t.SpilloverDelay(), snooze)
			}
		}
	}
	return errors.Join(errs...)
}
