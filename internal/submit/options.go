package submit

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// SQS limits (SQS API reference: SendMessage, SendMessageBatch and the
// MaximumMessageSize attribute, whose maximum is 1 MiB). Both count a
// message as its body plus its message attributes' names, types and values.
const (
	// MaxMessageBytes is the largest message SQS accepts.
	MaxMessageBytes = 1 << 20
	// MaxBatchBytes is the largest total of one SendMessageBatch call.
	MaxBatchBytes = 1 << 20
	// MaxBatchEntries is the most entries one SendMessageBatch call takes.
	MaxBatchEntries = 10
)

// Defaults for the Options left at their zero value.
const (
	// DefaultInlineLimit keeps messages well under SQS's 1 MiB maximum, and
	// under the 256 KiB that queues created before 2025 may still be
	// configured with: a larger document is cheaper and safer in S3.
	DefaultInlineLimit = 240 << 10
	// DefaultInputPrefix is where uploaded documents go in the input bucket.
	DefaultInputPrefix = "inputs/"
	// DefaultTask is the task given to documents read from files.
	DefaultTask = tiering.TaskSummarize
	// DefaultMaxAttempts is how often a batch entry is sent before it is
	// reported as failed.
	DefaultMaxAttempts = 4
	// MinInlineLimit leaves room for a job's fields besides its text.
	MinInlineLimit = 1 << 10
)

// Options configure a Run. Zero values take the documented defaults.
type Options struct {
	// Paths are the inputs, in order: document files, folders of documents
	// and *.jsonl job lists (see the package documentation).
	Paths []string

	// QueueURL is the job queue. Required unless DryRun.
	QueueURL string
	// InputBucket receives documents too large to send inline. Without it,
	// such a job fails with ErrNoInputBucket.
	InputBucket string
	// InputPrefix is prepended to uploaded documents' keys, which are
	// {InputPrefix}{job_id}.txt. Default DefaultInputPrefix ("inputs/").
	InputPrefix string
	// InlineLimit is the largest message, in bytes as SQS counts them, that
	// carries its document inline; a larger one is sent by reference.
	// Default DefaultInlineLimit (240 KiB); at most MaxMessageBytes.
	InlineLimit int

	// The following describe documents read from files. Jobs read from
	// JSONL carry their own and are not changed.

	// Task is summarize, classify, extract or custom. Default summarize.
	Task string
	// Labels are the classes for classify (at least 2 there).
	Labels []string
	// Fields are what extract returns (required there).
	Fields []string
	// Instructions are required for custom and optional otherwise.
	Instructions string
	// TierHint and TierOverride are copied into each job; see tiering.Facts.
	TierHint     string
	TierOverride string
	// JobIDPrefix is prepended to job IDs derived from file names, so
	// reruns of the same folder can get fresh IDs (a job ID gets one result
	// ever). It must start with a letter or digit.
	JobIDPrefix string
	// Tenant is set as metadata "tenant", used by cost reports.
	Tenant string

	// Raw sends each input file verbatim as one message body: no parsing,
	// no validation, no upload. It exists to send malformed messages on
	// purpose, to exercise the dead-letter path.
	Raw bool
	// DryRun plans tiers and costs and sends nothing; it needs no AWS
	// clients.
	DryRun bool
	// Verbose adds one line per job to the dry-run plan.
	Verbose bool
	// AllowInvalid makes Run succeed when invalid inputs were skipped.
	AllowInvalid bool
	// Terminal redraws the progress bar in place; otherwise progress is a
	// line per 10%.
	Terminal bool
	// MaxAttempts is how often an entry SQS reports as failed is sent
	// before it is reported. Default DefaultMaxAttempts (4).
	MaxAttempts int
}

var prefixRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// withDefaults returns o with zero values replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.InputPrefix == "" {
		o.InputPrefix = DefaultInputPrefix
	}
	if o.InlineLimit == 0 {
		o.InlineLimit = DefaultInlineLimit
	}
	if o.Task == "" {
		o.Task = DefaultTask
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	return o
}

// Validate reports every problem with the options at once. Zero values
// count as their defaults.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(o.Paths) == 0 {
		bad("paths: give at least one file, folder or JSONL file")
	}
	if !o.DryRun && o.QueueURL == "" {
		bad("queue URL: required unless dry run")
	}
	if o.Raw && o.DryRun {
		bad("raw and dry run: raw messages are not jobs, so there is nothing to plan")
	}
	// Uploaded documents are sent as s3://{bucket}/{prefix}{job_id}.txt,
	// which the worker reads with jobv1.ParseS3URI; checking both parts
	// with it here refuses a run that every worker would fail, job by job.
	switch {
	case strings.Contains(o.InputBucket, "/"):
		bad("input bucket: %q is not a bucket name (give the name, not an s3:// URI)", o.InputBucket)
	case o.InputBucket != "":
		if _, _, err := jobv1.ParseS3URI("s3://" + o.InputBucket + "/k"); err != nil {
			bad("input bucket: %w", err)
		}
	}
	if _, _, err := jobv1.ParseS3URI("s3://input-bucket/" + o.InputPrefix + "job.txt"); err != nil {
		bad("input prefix %q: %w", o.InputPrefix, err)
	}
	if o.InlineLimit < MinInlineLimit || o.InlineLimit > MaxMessageBytes {
		bad("inline limit: %d bytes is outside %d..%d", o.InlineLimit, MinInlineLimit, MaxMessageBytes)
	}
	if o.MaxAttempts < 1 {
		bad("max attempts: must be at least 1 (got %d)", o.MaxAttempts)
	}
	if o.JobIDPrefix != "" && !prefixRe.MatchString(o.JobIDPrefix) {
		bad("job ID prefix: %q must be 1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit", o.JobIDPrefix)
	}
	// The task's needs are checked here as well as on each job, so a
	// missing --labels is one message rather than one per document.
	switch {
	case o.Raw:
	case !slices.Contains([]string{tiering.TaskSummarize, tiering.TaskClassify, tiering.TaskExtract, tiering.TaskCustom}, o.Task):
		bad("task: %q is not summarize, classify, extract or custom", o.Task)
	case o.Task == tiering.TaskClassify && len(o.Labels) < 2:
		bad("labels: task classify needs at least 2 labels")
	case o.Task == tiering.TaskExtract && len(o.Fields) == 0:
		bad("fields: task extract needs at least one field")
	case o.Task == tiering.TaskCustom && strings.TrimSpace(o.Instructions) == "":
		bad("instructions: required for task custom")
	}
	if len(o.Instructions) > jobv1.MaxInstructionsBytes {
		bad("instructions: %d bytes, more than %d", len(o.Instructions), jobv1.MaxInstructionsBytes)
	}
	return errors.Join(errs...)
}
