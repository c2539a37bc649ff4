package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

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
// fix; it starts with "results bucket", not with a prefix of its own, so the
// caller's ("start-up checks: ...") is the only one. Call it once at
// start-up and refuse to start on an error.
func (p *Pipeline) Preflight(ctx context.Context) error {
	bucket := p.cfg.ResultsBucket
	key := p.cfg.ResultsPrefix + ".tierq-preflight-" + strings.ToLower(rand.Text())
	where := fmt.Sprintf("results bucket %s", bucket)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.S3Timeout)
	defer cancel()
	// HeadObject first: it is the call the exactly-once check makes.
	exists, herr := p.obj.Exists(ctx, bucket, key)
	if herr == nil && exists {
		return nil // someone created the key; the bucket answers either way
	}
	if herr != nil && !errors.Is(herr, errDenied) {
		return p.preflightError(where+": HeadObject", herr)
	}
	// A HEAD response has no body, so S3 cannot say why: its 404 may be a
	// missing key or a missing bucket, its 403 a missing s3:ListBucket or
	// rejected credentials. A GET of the same key carries the error code.
	_, gerr := p.obj.Get(ctx, bucket, key, 0)
	switch {
	case gerr == nil:
		return nil
	case errors.Is(gerr, errNotFound) && herr != nil:
		return p.preflightError(where+": HeadObject", herr)
	case errors.Is(gerr, errNotFound):
		return nil
	}
	return p.preflightError(where+": GetObject", gerr)
}

func (p *Pipeline) preflightError(where string, err error) error {
	bucket := p.cfg.ResultsBucket
	if errors.Is(err, errCredsBad) {
		return fmt.Errorf("%s: %s (%s): %w", where, credentialHint, awserr.Code(err), err)
	}
	switch {
	case errors.Is(err, errNoBucket):
		return fmt.Errorf("results bucket %s does not exist (create it, or fix the results bucket setting): %w", bucket, err)
	case errors.Is(err, errDenied):
		return fmt.Errorf("%s: access denied looking up a key that does not exist: %s: %w", where, listBucketHelp(bucket), err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
