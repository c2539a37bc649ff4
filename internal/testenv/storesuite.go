package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/awserr"
)

// ObjectStore is the part of S3 tierq's results, claims and documents rely
// on (pipeline.Store has the same methods): *s3.Client, and the pipeline's
// in-memory fake, satisfy it.
type ObjectStore interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// StoreBackend is one object store the suite runs against: the in-memory
// fake, kumo, or whatever AWS_ENDPOINT_URL_S3 names (LocalStack, real S3).
type StoreBackend struct {
	Name  string
	Store ObjectStore
	// Bucket is an existing, empty bucket of the suite's own.
	Bucket string
}

// RunObjectStoreSuite checks, on one back end, every S3 behaviour that
// exactly-once results and claims depend on (watermill's pubsub/tests is the
// model: one suite, many back ends). The pipeline's unit tests trust their
// fake to behave this way; this suite is why they may.
func RunObjectStoreSuite(t *testing.T, b StoreBackend) {
	ctx := context.Background()
	put := func(key, body string, mod func(*s3.PutObjectInput)) (string, error) {
		in := &s3.PutObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}
		if mod != nil {
			mod(in)
		}
		out, err := b.Store.PutObject(ctx, in)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ETag), nil
	}
	create := func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }
	ifMatch := func(etag string) func(*s3.PutObjectInput) {
		return func(in *s3.PutObjectInput) { in.IfMatch = aws.String(etag) }
	}
	get := func(key string) (string, string, error) {
		out, err := b.Store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key)})
		if err != nil {
			return "", "", err
		}
		defer out.Body.Close()
		body, err := io.ReadAll(out.Body)
		return string(body), aws.ToString(out.ETag), err
	}

	t.Run(b.Name+"/create only if absent", func(t *testing.T) {
		etag, err := put("suite/result.json", "first", create)
		if err != nil || etag == "" {
			t.Fatalf("create: ETag %q, %v; want an ETag", etag, err)
		}
		if _, err := put("suite/result.json", "second", create); !awserr.PreconditionFailed(err) {
			t.Fatalf("second create: %v, want 412 PreconditionFailed", err)
		}
		if body, _, err := get("suite/result.json"); err != nil || body != "first" {
			t.Errorf("after a refused create the object is %q (%v), want the first", body, err)
		}
	})
	t.Run(b.Name+"/replace only the version read", func(t *testing.T) {
		first, err := put("suite/x.claim", "v1", create)
		if err != nil {
			t.Fatal(err)
		}
		if body, etag, err := get("suite/x.claim"); err != nil || body != "v1" || etag != first {
			t.Fatalf("get: %q ETag %q (%v), want v1 with the create's ETag %q", body, etag, err, first)
		}
		second, err := put("suite/x.claim", "v2", ifMatch(first))
		if err != nil || second == "" || second == first {
			t.Fatalf("replace with the current ETag: ETag %q, %v; want a new ETag", second, err)
		}
		if _, err := put("suite/x.claim", "v3", ifMatch(first)); !awserr.PreconditionFailed(err) {
			t.Errorf("replace with a stale ETag: %v, want 412 PreconditionFailed", err)
		}
		if _, err := put("suite/missing.claim", "v1", ifMatch(first)); err == nil {
			t.Error("replace of a missing key with If-Match succeeded")
		}
	})
	t.Run(b.Name+"/missing keys", func(t *testing.T) {
		_, err := b.Store.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String("suite/none.json")})
		if !awserr.NotFound(err) || awserr.Code(err) == "NoSuchBucket" {
			t.Errorf("HeadObject of a missing key: %v, want 404", err)
		}
		if _, _, err := get("suite/none.json"); !awserr.NotFound(err) || awserr.Code(err) == "NoSuchBucket" {
			t.Errorf("GetObject of a missing key: %v, want NoSuchKey", err)
		}
	})
	t.Run(b.Name+"/keys are verbatim", func(t *testing.T) {
		keys := []string{"suite/notes", "suite/notes#2.txt", "suite/a?b=c.txt", "suite/100%25.txt", "suite/with space.txt", "suite/ünï/文書.txt"}
		for i, k := range keys {
			if _, err := put(k, fmt.Sprint(i), nil); err != nil {
				t.Fatalf("put %q: %v", k, err)
			}
		}
		for i, k := range keys {
			if body, _, err := get(k); err != nil || body != fmt.Sprint(i) {
				t.Errorf("get %q: %q (%v), want %d: another key's object", k, body, err, i)
			}
		}
	})
	t.Run(b.Name+"/one of many concurrent creates wins", func(t *testing.T) {
		var wg sync.WaitGroup
		var won atomic.Int32
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := put("suite/race.claim", fmt.Sprint(i), create); err == nil {
					won.Add(1)
				} else if !awserr.PreconditionFailed(err) && !awserr.ConditionalConflict(err) {
					t.Errorf("a losing create: %v, want 412 or 409", err)
				}
			}()
		}
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Errorf("%d creates won, want exactly 1", n)
		}
	})
}
