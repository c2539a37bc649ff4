package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Store is the part of S3 the pipeline uses: read documents, check for and
// write results. *s3.Client satisfies it.
type Store interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ Store = (*s3.Client)(nil)

// conflictDelay is how long to wait after S3's 409 ConditionalRequestConflict:
// another conditional write to the same key was in flight, and either it
// lands (our retry then sees the result and stops) or it fails (ours goes in).
const conflictDelay = 2 * time.Second

// ResultKey is the object key of a job's result.
func ResultKey(prefix, jobID string) string { return prefix + jobID + ".json" }

// resultExists reports whether the job already has a result.
func (p *Pipeline) resultExists(ctx context.Context, key string) (bool, error) {
	_, err := p.store.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(p.cfg.ResultsBucket), Key: aws.String(key)})
	switch {
	case err == nil:
		return true, nil
	case notFound(err):
		return false, nil
	}
	return false, p.transient(ctx, fmt.Errorf("check for result s3://%s/%s: %w", p.cfg.ResultsBucket, key, err), p.cfg.Retry.ReleaseDelay)
}

// writeResult writes a result unless the key exists. written is false when
// another worker wrote it first: S3's If-None-Match: * makes the first write
// win, so a job redelivered while still running never gets two results.
func (p *Pipeline) writeResult(ctx context.Context, key string, r *Result) (written bool, err error) {
	body, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("encode result of job %s: %w", r.JobID, err)
	}
	_, err = p.store.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(p.cfg.ResultsBucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
		IfNoneMatch: aws.String("*"),
	})
	if err == nil {
		return true, nil
	}
	code, status := errorCode(err), httpStatus(err)
	where := fmt.Sprintf("write result s3://%s/%s", p.cfg.ResultsBucket, key)
	switch {
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return false, nil
	case code == "ConditionalRequestConflict" || status == http.StatusConflict:
		return false, p.transient(ctx, fmt.Errorf("%s: concurrent write: %w", where, err), conflictDelay)
	}
	return false, p.transient(ctx, fmt.Errorf("%s: %w", where, err), p.cfg.Retry.ReleaseDelay)
}

// transient wraps err for release after d, or at once when our own context
// ended (shutdown): the job did not fail, this worker just stopped.
func (p *Pipeline) transient(ctx context.Context, err error, d time.Duration) error {
	if ctx.Err() != nil {
		return RetryAfter(err, 0)
	}
	return RetryAfter(err, d)
}

// loadDocument returns the job's document text. Problems with the document
// itself are failures; S3 trouble is transient.
func (p *Pipeline) loadDocument(ctx context.Context, job Job) (string, error) {
	limit := p.cfg.MaxDocumentBytes
	if job.DocumentURI == "" {
		if int64(len(job.Text)) > limit {
			return "", fail(CodeDocumentTooLarge, nil, "inline text is %d bytes, more than the %d-byte limit", len(job.Text), limit)
		}
		return job.Text, checkText(job.Text, "inline text")
	}
	uri := job.DocumentURI
	bucket, key, err := ParseS3URI(uri)
	if err != nil {
		return "", fail(CodeInvalidJob, err, "document_uri: %v", err)
	}
	if !slices.Contains(p.cfg.InputBuckets, bucket) {
		allowed := "none: this worker accepts inline documents only"
		if len(p.cfg.InputBuckets) > 0 {
			allowed = strings.Join(p.cfg.InputBuckets, ", ")
		}
		return "", fail(CodeBucketNotAllowed, nil, "bucket %q is not an allowed input bucket (allowed: %s)", bucket, allowed)
	}
	out, err := p.store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		code, status := errorCode(err), httpStatus(err)
		switch {
		case notFound(err):
			return "", fail(CodeDocumentNotFound, err, "%s does not exist", uri)
		case code == "AccessDenied" || status == http.StatusForbidden:
			return "", fail(CodeDocumentAccessDenied, err, "the worker may not read %s (allow s3:GetObject on it to the worker's role)", uri)
		}
		return "", p.transient(ctx, fmt.Errorf("read document %s: %w", uri, err), p.cfg.Retry.ReleaseDelay)
	}
	defer out.Body.Close()
	if n := deref(out.ContentLength); n > limit {
		return "", fail(CodeDocumentTooLarge, nil, "%s is %d bytes, more than the %d-byte limit", uri, n, limit)
	}
	// ContentLength is the server's word; the limited read is ours, so a
	// missing or wrong length cannot make us hold an unbounded document.
	data, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return "", p.transient(ctx, fmt.Errorf("read document %s: %w", uri, err), p.cfg.Retry.ReleaseDelay)
	}
	if int64(len(data)) > limit {
		return "", fail(CodeDocumentTooLarge, nil, "%s is more than the %d-byte limit", uri, limit)
	}
	text := string(data)
	return text, checkText(text, uri)
}

// checkText rejects documents a model cannot take as text.
func checkText(text, what string) error {
	switch {
	case !utf8.ValidString(text):
		return fail(CodeInvalidDocument, nil, "%s is not valid UTF-8 text", what)
	case strings.TrimSpace(text) == "":
		return fail(CodeInvalidDocument, nil, "%s is empty", what)
	}
	return nil
}

// notFound reports S3's "no such object": NoSuchKey or NoSuchBucket from
// GetObject, NotFound (or a bare 404: HEAD responses have no body) from
// HeadObject.
func notFound(err error) bool {
	switch errorCode(err) {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}
