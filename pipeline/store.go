package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sethvargo/go-retry"
	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

// Store is the part of S3 the pipeline uses: read documents, check for and
// write results. *s3.Client satisfies it.
type Store interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ Store = (*s3.Client)(nil)

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
	_, err := p.store.HeadObject(hctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	if noSuchKey(err) {
		return false, nil
	}
	where := fmt.Sprintf("check for result s3://%s/%s", bucket, key)
	if code, ok := awserr.Credential(err); ok {
		log.Error(where+": "+credentialHint, "error_code", code)
	} else if awserr.AccessDenied(err) {
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
		_, err := p.store.PutObject(ctx, &s3.PutObjectInput{
			Bucket:      aws.String(bucket),
			Key:         aws.String(key),
			Body:        bytes.NewReader(body), // a fresh reader per attempt
			ContentType: aws.String("application/json"),
			IfNoneMatch: aws.String("*"),
		})
		last = err
		switch {
		case err == nil:
			written = true
			return nil
		case awserr.PreconditionFailed(err):
			// The object may be our own write whose response was lost,
			// after our failed attempt or inside the SDK's own retry of this
			// one, rather than another delivery's; one GET tells.
			written = p.isOurs(ctx, bucket, key, body)
			return nil
		}
		code := awserr.Code(err)
		attrs := []any{"bucket", bucket, "attempt", attempts, "max_attempts", resultWriteAttempts, "error_code", code}
		switch _, cred := awserr.Credential(err); {
		case cred:
			// The SDK corrects clock skew from the failed response, so a
			// retry can succeed; either way a person should know.
			log.Error(where+": "+credentialHint, attrs...)
		case code == "NoSuchBucket" || awserr.AccessDenied(err):
			log.Error(where+": the results bucket is missing or the worker may not write to it (allow s3:PutObject)", attrs...)
			return err
		case !retryablePut(err):
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
	if awserr.ConditionalConflict(last) {
		return false, p.transientAfter(ctx, fmt.Errorf("%s: concurrent write, %d attempts: %w", where, attempts, last), conflictDelay)
	}
	return false, p.transient(ctx, fmt.Errorf("%s: %d attempts: %w", where, attempts, last))
}

// isOurs reports whether the object at key is body, byte for byte. A result
// records its worker and timings, so another delivery's never matches.
func (p *Pipeline) isOurs(ctx context.Context, bucket, key string, body []byte) bool {
	out, err := p.store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return false // then the job counts as another delivery's: no metrics line, nothing worse
	}
	defer out.Body.Close()
	got, err := io.ReadAll(io.LimitReader(out.Body, int64(len(body))+1))
	return err == nil && bytes.Equal(got, body)
}

// retryablePut reports the PutObject errors worth another try in-process:
// S3's 5xx, 409 ConditionalRequestConflict, S3's RequestTimeout (a 400 for a
// stalled upload), and errors without any answer from S3 (network).
// Credential errors are retried by the caller.
func retryablePut(err error) bool {
	code, status := awserr.Code(err), awserr.HTTPStatus(err)
	switch {
	case status >= 500 || status == http.StatusConflict:
		return true
	case code == "SlowDown", code == "InternalError", code == "ServiceUnavailable",
		code == "ConditionalRequestConflict", code == "RequestTimeout":
		return true
	case code != "" || status != 0:
		return false
	}
	return true
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
	out, err := p.store.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		code, cred := awserr.Credential(err)
		switch {
		case cred:
			// Checked before 403: S3 answers SignatureDoesNotMatch and
			// InvalidAccessKeyId with 403 too, and those are the worker's
			// trouble, not the document's.
			log.Error("read document: "+credentialHint, "bucket", bucket, "error_code", code)
		case awserr.NotFound(err):
			return "", fail(jobv1.CodeDocumentNotFound, err, "%s does not exist", uri)
		case awserr.AccessDenied(err):
			return "", fail(jobv1.CodeDocumentAccessDenied, err, "the worker may not read %s (allow s3:GetObject on it to the worker's role)", uri)
		}
		return "", p.transient(ctx, fmt.Errorf("read document %s: %w", uri, err))
	}
	defer out.Body.Close()
	if n := deref(out.ContentLength); n > limit {
		return "", fail(jobv1.CodeDocumentTooLarge, nil, "%s is %d bytes, more than the %d-byte limit", uri, n, limit)
	}
	// ContentLength is the server's word; the limited read is ours, so a
	// missing or wrong length cannot make us hold an unbounded document.
	data, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return "", p.transient(ctx, fmt.Errorf("read document %s: %w", uri, err))
	}
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

// noSuchKey is awserr.NotFound without NoSuchBucket: for the results bucket, a
// missing bucket is the worker's misconfiguration, not a job without a result.
// (A HEAD cannot tell the two apart, as it has no body; Preflight can.)
func noSuchKey(err error) bool { return awserr.NotFound(err) && awserr.Code(err) != "NoSuchBucket" }

// plural says "1 NUL byte" or "3 NUL bytes".
func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
