package submit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sethvargo/go-retry"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// Queue is the part of SQS that submit uses.
type Queue interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Uploader is the part of S3 that submit uses.
type Uploader interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var (
	_ Queue    = (*sqs.Client)(nil)
	_ Uploader = (*s3.Client)(nil)
)

// Deps are what a Run talks to. A dry run needs none of them.
type Deps struct {
	// Queue sends job messages. Required unless Options.DryRun.
	Queue Queue
	// Uploader stores large documents. Required when Options.InputBucket
	// is set, unless Options.DryRun.
	Uploader Uploader
	// Tiers classify and price jobs in a dry run. Default tiering.Default().
	Tiers *tiering.Config
	// Backoff returns the waits between attempts at a batch's failed
	// entries; Options.MaxAttempts bounds the attempts. Default
	// DefaultBackoff. Tests inject one without waits.
	Backoff func() retry.Backoff
}

// Errors Run returns (joined) when it finished but not everything went out.
var (
	// ErrSkipped: invalid inputs were skipped (unless Options.AllowInvalid).
	ErrSkipped = errors.New("invalid inputs skipped")
	// ErrFailed: valid jobs could not be sent; Summary.Failed says why.
	ErrFailed = errors.New("jobs not sent")
)

// ErrDuplicateJobID: a job ID already used earlier in the same run. The
// later job is skipped: two jobs with one ID would get one result.
var ErrDuplicateJobID = errors.New("duplicate job_id")

// Problem is an input that was skipped or a job that failed.
type Problem struct {
	// Source is the file, or file:line for a JSONL line.
	Source string
	// JobID is the job's ID when known ("" for an unparseable line or a
	// raw message).
	JobID string
	Err   error
}

func (p Problem) String() string {
	if p.JobID == "" {
		return fmt.Sprintf("%s: %v", p.Source, p.Err)
	}
	return fmt.Sprintf("%s (%s): %v", p.JobID, p.Source, p.Err)
}

// Summary is the outcome of a Run.
type Summary struct {
	// Inputs is the number of documents, JSONL lines and raw files read.
	Inputs int
	// Sent is the number of messages SQS accepted; SentJobIDs lists the
	// jobs among them, in the order they were accepted.
	Sent       int
	SentJobIDs []string
	// Uploaded is the number of documents uploaded to the input bucket
	// (in a dry run: that would be).
	Uploaded int
	// Bytes is the number of message and document bytes sent.
	Bytes int64
	// Skipped are inputs that are not valid jobs; nothing was sent for them.
	Skipped []Problem
	// Failed are jobs (or raw messages) that could not be sent.
	Failed []Problem
	// NotSent counts inputs never tried because the run stopped early.
	NotSent int
	// Plan is the dry run's plan; nil otherwise.
	Plan *Plan
}

// FailedJobIDs returns the IDs of the failed jobs, or for raw messages
// their files.
func (s Summary) FailedJobIDs() []string {
	ids := make([]string, 0, len(s.Failed))
	for _, p := range s.Failed {
		if p.JobID != "" {
			ids = append(ids, p.JobID)
		} else {
			ids = append(ids, p.Source)
		}
	}
	return ids
}

// Run submits the inputs in opts.Paths: it sends one message per valid job
// (or per file in raw mode) and reports progress to progress, or in a dry
// run writes the plan to out and sends nothing. The Summary is filled in
// whatever happens; the error is non-nil when the options or inputs are
// unusable, when the run stopped early (the queue is unusable, ctx ended),
// or when jobs failed or inputs were skipped (ErrFailed, ErrSkipped).
func Run(ctx context.Context, opts Options, deps Deps, progress, out io.Writer) (Summary, error) {
	if err := opts.Validate(); err != nil {
		return Summary{}, fmt.Errorf("invalid options:\n%w", err)
	}
	opts = opts.withDefaults()
	if !opts.DryRun {
		var errs []error
		if deps.Queue == nil {
			errs = append(errs, errors.New("no SQS client"))
		}
		if deps.Uploader == nil && opts.InputBucket != "" {
			errs = append(errs, errors.New("no S3 client for the input bucket"))
		}
		if err := errors.Join(errs...); err != nil {
			return Summary{}, err
		}
	}
	if deps.Tiers == nil {
		deps.Tiers = tiering.Default()
	}
	if deps.Backoff == nil {
		deps.Backoff = DefaultBackoff
	}
	ins, err := collect(opts.Paths, opts.Raw)
	if err != nil {
		return Summary{}, err
	}
	r := &runner{opts: opts, deps: deps, ids: idSet{}, sum: Summary{Inputs: len(ins)}}
	if opts.DryRun {
		r.p = newProgress(progress, false, 0)
		err = r.dryRun(ctx, ins, out)
	} else {
		r.p = newProgress(progress, opts.Terminal, len(ins))
		err = r.send(ctx, ins)
		r.p.finish(r.sum)
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if n := len(r.sum.Failed); n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d failed", ErrFailed, n))
	}
	if n := len(r.sum.Skipped); n > 0 && !opts.AllowInvalid {
		errs = append(errs, fmt.Errorf("%w: %d", ErrSkipped, n))
	}
	return r.sum, errors.Join(errs...)
}

type runner struct {
	opts Options
	deps Deps
	ids  idSet
	sum  Summary
	p    *progress
}

// job reads and validates one document or JSONL line into a job, and claims
// its ID.
func (r *runner) job(in input) (jobv1.Job, error) {
	if in.line != nil {
		j, err := parseLine(in.line, in.dir)
		if err != nil {
			return j, err
		}
		if first, dup := r.ids[j.JobID]; dup {
			return j, fmt.Errorf("%w %q: first used at %s", ErrDuplicateJobID, j.JobID, first)
		}
		r.ids[j.JobID] = in.source
		return j, nil
	}
	text, err := readDocument(in.path)
	if err != nil {
		return jobv1.Job{}, err
	}
	j := fileJob(r.opts, text)
	j.JobID = JobIDFromFileName(r.opts.JobIDPrefix, in.path)
	// Two names that sanitize to one ID are refused rather than renamed: a
	// suffix would depend on what else is being sent, and a later run could
	// attach an earlier document's result to a different file.
	if first, dup := r.ids[j.JobID]; dup {
		return j, fmt.Errorf("%w %q: %s and %s both map to it; rename one", ErrDuplicateJobID, j.JobID, first, in.source)
	}
	if err := j.Validate(); err != nil {
		return j, err
	}
	r.ids[j.JobID] = in.source
	return j, nil
}

func (r *runner) skip(source, jobID string, err error) {
	r.sum.Skipped = append(r.sum.Skipped, Problem{Source: source, JobID: jobID, Err: err})
	r.p.skipped++
	r.p.done++
	r.p.note("submit: skipped %s", Problem{Source: source, JobID: jobID, Err: err})
	r.p.update()
}

func (r *runner) fail(m message, err error) {
	pr := Problem{Source: m.source, JobID: m.jobID, Err: err}
	r.sum.Failed = append(r.sum.Failed, pr)
	r.p.failed++
	r.p.done++
	r.p.note("submit: failed %s", pr)
	r.p.update()
}

// send prepares each input in turn and feeds the batcher. Inputs are read
// one at a time, so memory holds one batch of documents, not the corpus.
func (r *runner) send(ctx context.Context, ins []input) error {
	b := &batcher{
		queue: r.deps.Queue, queueURL: r.opts.QueueURL,
		maxAttempts: r.opts.MaxAttempts, backoff: r.deps.Backoff,
		sent: func(m message) {
			r.sum.Sent++
			if m.jobID != "" {
				r.sum.SentJobIDs = append(r.sum.SentJobIDs, m.jobID)
			}
			r.sum.Bytes += int64(m.size())
			r.p.bytes += int64(m.size())
			r.p.done++
			r.p.update()
		},
		failed: r.fail,
	}
	for k, in := range ins {
		if ctx.Err() != nil {
			// Report what was batched but not yet sent as failed, the rest
			// as never tried.
			r.sum.NotSent = len(ins) - k
			if err := b.flush(ctx); err != nil {
				return err
			}
			return context.Cause(ctx)
		}
		m, ok := r.message(in)
		if !ok {
			continue
		}
		if m.doc != nil {
			if err := r.upload(ctx, m); err != nil {
				r.fail(m, err)
				continue
			}
			m.doc = nil // in S3 now; a batch should hold messages, not documents
		}
		if err := b.add(ctx, m); err != nil {
			r.sum.NotSent = len(ins) - k
			return err
		}
	}
	return b.flush(ctx)
}

// message turns an input into its message, reporting a skip or a failure
// itself when it cannot.
func (r *runner) message(in input) (message, bool) {
	if r.opts.Raw {
		body, err := os.ReadFile(in.path)
		if err != nil {
			r.skip(in.source, "", fmt.Errorf("read raw message: %w", err))
			return message{}, false
		}
		m, err := rawMessage(in.source, body)
		if err != nil {
			r.fail(message{source: in.source}, err)
			return message{}, false
		}
		return m, true
	}
	j, err := r.job(in)
	if err != nil {
		r.skip(in.source, j.JobID, err)
		return message{}, false
	}
	m, err := buildMessage(j, in.source, r.opts)
	if err != nil {
		r.fail(message{source: in.source, jobID: j.JobID}, err)
		return message{}, false
	}
	return m, true
}

// upload stores a document that is too large to send inline. The key is
// derived from the job ID, so a rerun overwrites the same object rather
// than leaving another copy.
func (r *runner) upload(ctx context.Context, m message) error {
	_, err := r.deps.Uploader.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(r.opts.InputBucket),
		Key:           aws.String(m.key),
		Body:          bytes.NewReader(m.doc), // seekable, so the SDK can sign and retry it
		ContentLength: aws.Int64(int64(len(m.doc))),
		ContentType:   aws.String("text/plain; charset=utf-8"),
	})
	if err != nil {
		return fmt.Errorf("upload document to s3://%s/%s: %w", r.opts.InputBucket, m.key, err)
	}
	r.sum.Uploaded++
	r.sum.Bytes += int64(len(m.doc))
	r.p.uploaded++
	r.p.bytes += int64(len(m.doc))
	return nil
}
