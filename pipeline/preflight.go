package pipeline

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tierq/tierq/internal/awserr"
)

// Preflight checks, before the worker takes any job, that the results bucket
// exists and that the worker can tell a job without a result from a job with
// one. It looks up a random key under the results prefix that no job uses
// ({prefix}.tierq-preflight-<random>) and writes nothing.
//
// A missing key is what it expects. A missing bucket, or a 403 where a 404
// should be, is a misconfiguration that every job would otherwise meet one
// by one: with a 403 on the result check each job is released and comes back
// until it is dead-lettered, and a result that cannot be written after the
// model answered is paid for again on every delivery. The error says what to
// fix. Call it once at start-up and refuse to start on an error.
func (p *Pipeline) Preflight(ctx context.Context) error {
	bucket := p.cfg.ResultsBucket
	key := p.cfg.ResultsPrefix + ".tierq-preflight-" + strings.ToLower(rand.Text())
	where := fmt.Sprintf("results bucket %s", bucket)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.S3Timeout)
	defer cancel()
	// HeadObject first: it is the call the exactly-once check makes.
	_, herr := p.store.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if herr == nil {
		return nil // someone created the key; the bucket answers either way
	}
	if !noSuchKey(herr) && !awserr.AccessDenied(herr) {
		return p.preflightError(where+": HeadObject", herr)
	}
	// A HEAD response has no body, so S3 cannot say why: its 404 may be a
	// missing key or a missing bucket, its 403 a missing s3:ListBucket or
	// rejected credentials. A GET of the same key carries the error code.
	out, gerr := p.store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	switch {
	case gerr == nil:
		out.Body.Close()
		return nil
	case noSuchKey(gerr) && awserr.AccessDenied(herr):
		return p.preflightError(where+": HeadObject", herr)
	case noSuchKey(gerr):
		return nil
	}
	return p.preflightError(where+": GetObject", gerr)
}

func (p *Pipeline) preflightError(where string, err error) error {
	bucket := p.cfg.ResultsBucket
	if code, ok := awserr.Credential(err); ok {
		return fmt.Errorf("preflight: %s: %s (%s): %w", where, credentialHint, code, err)
	}
	switch {
	case awserr.Code(err) == "NoSuchBucket":
		return fmt.Errorf("preflight: results bucket %s does not exist (create it, or fix the results bucket setting): %w", bucket, err)
	case awserr.AccessDenied(err):
		return fmt.Errorf("preflight: %s: access denied looking up a key that does not exist: %s: %w", where, listBucketHelp(bucket), err)
	}
	return fmt.Errorf("preflight: %s: %w", where, err)
}
