package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sethvargo/go-retry"
	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

// conflictDelay is how long to wait after S3's 409 ConditionalRequestConflict
// outlasted the in-process retries: another conditional write to the same key
// was in flight, and either it lands (the next delivery then sees the result
// and stops) or it fails (ours goes in).
const conflictDelay = 2 * time.Second

// resultWriteAttempts bounds the PutObject calls for one result; the whole
// write is also bounded by Config.ResultWriteTimeout.
const resultWriteAttempts = 5

// listBucketHelp explains a 403 from HeadObject on a result key, which is
// what S3 answers for a missing key to a caller without s3:ListBucket.
func listBucketHelp(bucket string) string {
	return fmt.Sprintf("S3 answers 403 instead of 404 for a key that does not exist when the caller lacks s3:ListBucket; "+
		"the worker needs s3:ListBucket (and s3:GetObject) on results bucket %s, otherwise every job would look unfinished", bucket)
}

// resultExists reports whether the job already has a result.
func (p *Pipeline) resultExists(ctx context.Context, log *slog.Logger, key string) (bool, error) {
	hctx, cancel := context.WithTimeout(ctx, p.cfg.S3Timeout)
	defer cancel()
	bucket := p.cfg.ResultsBucket
	exists, err := p.obj.Exists(hctx, bucket, key)
	if err == nil {
		return exists, nil
	}
	where := fmt.Sprintf("check for result s3://%s/%s", bucket, key)
	if errors.Is(err, errCredsBad) {
		log.Error(where+": "+credentialHint, "error_code", awserr.Code(err))
	} else if errors.Is(err, errDenied) {
		// Not "no result": that would call the model for jobs that are
		// done. Released like any S3 trouble, and said loudly once, since
		// every job will do the same until the policy is fixed.
		where += ": access denied (" + listBucketHelp(bucket) + ")"
		if p.deniedLogged.CompareAndSwap(false, true) {
			// HEAD responses have no body, so this 403 may also be rejected
			// credentials; Preflight tells the two apart.
			log.Error("cannot check for results: "+listBucketHelp(bucket), "bucket", bucket, "error_code", awserr.Code(err))
		}
	}
	return false, p.transient(ctx, fmt.Errorf("%s: %w", where, err))
}

// writeResult writes a result unless the key exists. written is false when
// another worker wrote it first: S3's If-None-Match: * makes the first write
// win, so a job redelivered while still running never gets two results.
//
// By now the model has been paid for, and a result that is not written is
// paid for again on the next delivery. So the write outlives the job's
// context (cancelled at the end of the worker's drain window), bounded by
// Config.ResultWriteTimeout instead, and transient S3 errors are retried
// in-process before the message is released.
func (p *Pipeline) writeResult(ctx context.Context, log *slog.Logger, key string, r *jobv1.Result) (written bool, err error) {
	body, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("encode result of job %s: %w", r.JobID, err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ResultWriteTimeout)
	defer cancel()
	bucket := p.cfg.ResultsBucket
	where := fmt.Sprintf("write result s3://%s/%s", bucket, key)
	attempts := 0
	var last error
	err = retry.Do(wctx, retry.WithMaxRetries(resultWriteAttempts-1, p.writeBackoff()), func(ctx context.Context) error {
		attempts++
		_, err := p.obj.Create(ctx, bucket, key, body)
		last = err
		switch {
		case err == nil:
			written = true
			return nil
		case errors.Is(err, errExists):
			// The object may be our own write whose response was lost,
			// after our failed attempt or inside the SDK's own retry of this
			// one, rather than another delivery's; one GET tells.
			written = p.isOurs(ctx, bucket, key, body)
			return nil
		}
		code := awserr.Code(err)
		attrs := []any{"bucket", bucket, "attempt", attempts, "max_attempts", resultWriteAttempts, "error_code", code}
		switch {
		case errors.Is(err, errCredsBad):
			// The SDK corrects clock skew from the failed response, so a
			// retry can succeed; either way a person should know.
			log.Error(where+": "+credentialHint, attrs...)
		case errors.Is(err, errNoBucket) || errors.Is(err, errDenied):
			log.Error(where+": the results bucket is missing or the worker may not write to it (allow s3:PutObject)", attrs...)
			return err
		case !errors.Is(err, errRetryable) && !errors.Is(err, errConflict):
			return err
		default:
			log.Warn(where+": transient; retrying", attrs...)
		}
		return retry.RetryableError(err)
	})
	if err == nil {
		return written, nil
	}
	if last == nil {
		last = err
	}
	if errors.Is(last, errConflict) {
		return false, p.transientAfter(ctx, fmt.Errorf("%s: concurrent write, %d attempts: %w", where, attempts, last), conflictDelay)
	}
	return false, p.transient(ctx, fmt.Errorf("%s: %d attempts: %w", where, attempts, last))
}

// isOurs reports whether the object at key is body, byte for byte. A result
// records its worker and timings, so another delivery's never matches.
func (p *Pipeline) isOurs(ctx context.Context, bucket, key string, body []byte) bool {
	obj, err := p.obj.Get(ctx, bucket, key, int64(len(body)))
	// On an error the job counts as another delivery's: no metrics line,
	// nothing worse.
	return err == nil && !obj.TooLarge && bytes.Equal(obj.Body, body)
}

// transient releases the job for the worker's release delay, or at once
// when our own context ended (shutdown): the job did not fail, this worker
// just stopped.
func (p *Pipeline) transient(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return worker.ReleaseAfter(err, 0)
	}
	return worker.Release(err)
}

// transientAfter is transient with a delay of its own reason.
func (p *Pipeline) transientAfter(ctx context.Context, err error, d time.Duration) error {
	if ctx.Err() != nil {
		return worker.ReleaseAfter(err, 0)
	}
	return worker.ReleaseAfter(err, d)
}

// loadDocument returns the job's document text. Problems with the document
// itself are failures; S3 trouble is transient.
func (p *Pipeline) loadDocument(ctx context.Context, log *slog.Logger, job jobv1.Job) (string, error) {
	limit := p.cfg.MaxDocumentBytes
	if job.DocumentURI == "" {
		if int64(len(job.Text)) > limit {
			return "", fail(jobv1.CodeDocumentTooLarge, nil, "inline text is %d bytes, more than the %d-byte limit", len(job.Text), limit)
		}
		return job.Text, checkText(job.Text, "inline text")
	}
	uri := job.DocumentURI
	bucket, key, err := jobv1.ParseS3URI(uri)
	if err != nil {
		return "", fail(jobv1.CodeInvalidJob, err, "document_uri: %v", err)
	}
	if !slices.Contains(p.cfg.InputBuckets, bucket) {
		allowed := "none: this worker accepts inline documents only"
		if len(p.cfg.InputBuckets) > 0 {
			allowed = strings.Join(p.cfg.InputBuckets, ", ")
		}
		return "", fail(jobv1.CodeBucketNotAllowed, nil, "bucket %q is not an allowed input bucket (allowed: %s)", bucket, allowed)
	}
	if bucket == p.cfg.ResultsBucket && strings.HasPrefix(key, p.cfg.ResultsPrefix) {
		// An input bucket may also hold results; a job must still never read
		// another job's result or claim, which the worker's role can read.
		return "", fail(jobv1.CodeBucketNotAllowed, nil, "%s is under the results prefix %q: results and claims are never documents", uri, p.cfg.ResultsPrefix)
	}
	// The timeout covers reading the body: the body streams on this context.
	gctx, cancel := context.WithTimeout(ctx, p.cfg.S3Timeout)
	defer cancel()
	obj, err := p.obj.Get(gctx, bucket, key, limit)
	if err != nil {
		switch {
		case errors.Is(err, errCredsBad):
			log.Error("read document: "+credentialHint, "bucket", bucket, "error_code", awserr.Code(err))
		case errors.Is(err, errNotFound), errors.Is(err, errNoBucket):
			return "", fail(jobv1.CodeDocumentNotFound, err, "%s does not exist", uri)
		case errors.Is(err, errDenied):
			return "", fail(jobv1.CodeDocumentAccessDenied, err, "the worker may not read %s (allow s3:GetObject on it to the worker's role)", uri)
		}
		return "", p.transient(ctx, fmt.Errorf("read document %s: %w", uri, err))
	}
	if obj.TooLarge {
		return "", fail(jobv1.CodeDocumentTooLarge, nil, "%s is %d bytes, more than the %d-byte limit", uri, obj.Size, limit)
	}
	data := obj.Body
	if int64(len(data)) > limit {
		return "", fail(jobv1.CodeDocumentTooLarge, nil, "%s is more than the %d-byte limit", uri, limit)
	}
	text := string(data)
	return text, checkText(text, uri)
}

// maxControlShare is the share of a document's characters that may be
// control characters other than \t \n \r \f \v (form feeds between pages
// and vertical tabs from some exporters are text). Prose, CSV, logs and code
// have next to none; binary data that happens to be valid UTF-8 is full of
// them. One in a hundred characters lets the odd stray escape or bell
// through and refuses terminal captures dense with colour codes (a few ESC
// sequences per line), which cost tokens and mean nothing to a model: strip
// them before sending.
const maxControlShare = 0.01

// checkText rejects documents a model cannot take as text: not UTF-8, any
// NUL (binary data, or UTF-16 read as bytes), more than maxControlShare
// control characters, or nothing but white space. The message names the
// rule and the count, never the content.
func checkText(text, what string) error {
	if !utf8.ValidString(text) {
		return fail(jobv1.CodeInvalidDocument, nil, "%s is not valid UTF-8 text", what)
	}
	if n := strings.Count(text, "\x00"); n > 0 {
		return fail(jobv1.CodeInvalidDocument, nil, "%s has %s; text has none (is it binary, or UTF-16?)", what, plural(n, "NUL byte"))
	}
	chars, controls := 0, 0
	for _, r := range text {
		chars++
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			controls++
		}
	}
	if float64(controls) > maxControlShare*float64(chars) {
		return fail(jobv1.CodeInvalidDocument, nil, "%s has %s in %d (%.1f%%), more than %g%%; it looks binary, not text",
			what, plural(controls, "control character"), chars, 100*float64(controls)/float64(chars), 100*maxControlShare)
	}
	if strings.TrimSpace(text) == "" {
		return fail(jobv1.CodeInvalidDocument, nil, "%s is empty", what)
	}
	return nil
}

// plural says "1 NUL byte" or "3 NUL bytes".
func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
