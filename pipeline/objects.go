package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/awserr"
)

// objects is what the pipeline needs of an object store, in its own terms:
// documents to read with a size cap, results to look up and write once,
// claims to create and to replace only as last read. s3Objects adapts S3 to
// it; S3's request shapes, statuses and codes stop there, and the pipeline
// decides by the errors below.
type objects interface {
	// Exists reports whether key holds an object.
	Exists(ctx context.Context, bucket, key string) (bool, error)
	// Get reads the object at key: at most limit+1 bytes of it, or none when
	// the store says it is larger than limit (Object.TooLarge).
	Get(ctx context.Context, bucket, key string, limit int64) (Object, error)
	// Create writes body at key only if no object is there (errExists
	// otherwise) and returns the new version's ETag.
	Create(ctx context.Context, bucket, key string, body []byte) (string, error)
	// Replace writes body at key only if its current version has etag
	// (errChanged otherwise, errNotFound when it is gone).
	Replace(ctx context.Context, bucket, key, etag string, body []byte) (string, error)
}

// Object is what Get read.
type Object struct {
	Body []byte
	ETag string
	// Size is what the store says the object holds, or -1.
	Size int64
	// TooLarge: Size is over the limit, and nothing was read.
	TooLarge bool
}

// What an object store's answer means to the pipeline. An error from
// objects matches at most one of these with errors.Is, and unwraps to the
// store's own error (for its code in logs).
var (
	errExists    = errors.New("an object is already there")
	errChanged   = errors.New("the object changed since it was read")
	errConflict  = errors.New("another conditional write to the key is in flight")
	errNotFound  = errors.New("no such object")
	errNoBucket  = errors.New("no such bucket")
	errDenied    = errors.New("access denied")
	errCredsBad  = errors.New("credentials or request signature rejected")
	errRetryable = errors.New("the store's trouble; worth another try")
)

// storeError is an object store's error with what it means.
type storeError struct {
	kind error
	err  error
}

func (e *storeError) Error() string        { return e.err.Error() }
func (e *storeError) Unwrap() error        { return e.err }
func (e *storeError) Is(target error) bool { return target == e.kind }

// Store is the part of S3 that s3Objects calls (Deps.Store): *s3.Client
// satisfies it, and tests wrap or fake it. The rest of the pipeline sees it
// only through objects.
type Store interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ Store = (*s3.Client)(nil)

// s3Objects adapts S3 (Store, which *s3.Client satisfies) to objects.
type s3Objects struct{ s3 Store }

var _ objects = s3Objects{}

func (o s3Objects) Exists(ctx context.Context, bucket, key string) (bool, error) {
	_, err := o.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	switch {
	case err == nil:
		return true, nil
	case awserr.NotFound(err) && awserr.Code(err) != "NoSuchBucket":
		// A HEAD answer has no body: its 404 cannot tell a missing key
		// from a missing bucket (Preflight tells them apart).
		return false, nil
	}
	return false, classifyStore(err)
}

func (o s3Objects) Get(ctx context.Context, bucket, key string, limit int64) (Object, error) {
	out, err := o.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return Object{}, classifyStore(err)
	}
	defer out.Body.Close()
	obj := Object{ETag: aws.ToString(out.ETag), Size: -1}
	if out.ContentLength != nil {
		obj.Size = *out.ContentLength
	}
	if obj.Size > limit {
		obj.TooLarge = true
		return obj, nil
	}
	// ContentLength is the store's word; the limited read is ours, so a
	// missing or wrong length cannot make us hold an unbounded object.
	obj.Body, err = io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return Object{}, &storeError{kind: errRetryable, err: err}
	}
	return obj, nil
}

func (o s3Objects) Create(ctx context.Context, bucket, key string, body []byte) (string, error) {
	return o.put(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfNoneMatch: aws.String("*")}, body, errExists)
}

func (o s3Objects) Replace(ctx context.Context, bucket, key, etag string, body []byte) (string, error) {
	return o.put(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfMatch: aws.String(etag)}, body, errChanged)
}

// put writes with in's condition; a failed condition is failed.
func (o s3Objects) put(ctx context.Context, in *s3.PutObjectInput, body []byte, failed error) (string, error) {
	in.Body = bytes.NewReader(body) // seekable: the SDK can retry and sign it
	in.ContentType = aws.String("application/json")
	out, err := o.s3.PutObject(ctx, in)
	switch {
	case err == nil:
		return aws.ToString(out.ETag), nil
	case awserr.PreconditionFailed(err):
		return "", &storeError{kind: failed, err: err}
	case in.IfMatch != nil && awserr.NotFound(err):
		return "", &storeError{kind: errNotFound, err: err}
	}
	return "", classifyStore(err)
}

// classifyStore says what an S3 error means: credentials are checked
// before 403, since S3 answers SignatureDoesNotMatch and InvalidAccessKeyId
// with 403 too, and those are the worker's trouble, not the object's.
func classifyStore(err error) error {
	code, status := awserr.Code(err), awserr.HTTPStatus(err)
	if _, cred := awserr.Credential(err); cred {
		return &storeError{kind: errCredsBad, err: err}
	}
	switch {
	case code == "NoSuchBucket":
		return &storeError{kind: errNoBucket, err: err}
	case awserr.NotFound(err):
		return &storeError{kind: errNotFound, err: err}
	case awserr.AccessDenied(err):
		return &storeError{kind: errDenied, err: err}
	case awserr.ConditionalConflict(err):
		return &storeError{kind: errConflict, err: err}
	case status >= 500, code == "SlowDown", code == "InternalError", code == "ServiceUnavailable", code == "RequestTimeout":
		// S3's RequestTimeout is a 400 for a stalled upload: worth another try.
		return &storeError{kind: errRetryable, err: err}
	case code != "" || status != 0:
		return err // an answer that another try will not change
	}
	// No answer at all: a network error, a context that ended.
	return &storeError{kind: errRetryable, err: err}
}
