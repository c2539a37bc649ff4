package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/jobv1"
)

// ErrNoResult is in the chain of FetchResult's error when the job has no
// result object.
var ErrNoResult = errors.New("no result")

// ValidateJobID checks a job ID by the worker's own rules
// (jobv1.ValidateJobID), so tierq result refuses exactly what the worker
// would refuse, before any S3 call.
func ValidateJobID(id string) error { return jobv1.ValidateJobID(id) }

// Fetched is one result as stored and as decoded.
type Fetched struct {
	Location string
	Raw      []byte
	Result   jobv1.Result
}

// Claim is a job's claim object (jobv1.ClaimKey): who holds the job and
// until when.
type Claim = jobv1.Claim

// NoResultError says a job has no result, and what its claim shows.
type NoResultError struct {
	JobID    string
	Location string
	// Claim is the job's claim, nil when there is none or it could not
	// be read.
	Claim *Claim
	Now   time.Time
}

func (e *NoResultError) Error() string {
	msg := fmt.Sprintf("no result for job %s: %s does not exist", e.JobID, e.Location)
	switch {
	case e.Claim != nil && e.Claim.Until.After(e.Now):
		msg += fmt.Sprintf("; worker %s claimed it and holds it until %s: it is running (or its worker died, and another takes it over after that)",
			oneLine(e.Claim.Worker, 128), e.Claim.Until.UTC().Format(time.RFC3339))
	case e.Claim != nil:
		msg += fmt.Sprintf("; worker %s claimed it, and its lease ended %s: it was released (throttling, a transient error, a shutdown) and waits in the queue for another delivery",
			oneLine(e.Claim.Worker, 128), e.Claim.Until.UTC().Format(time.RFC3339))
	default:
		msg += "; no worker has claimed it: it is still in the queue, was never sent, or was dead-lettered (tierq status counts both; tierq redrive --dry-run lists the dead letters with their job IDs)"
	}
	return msg
}

// Is makes errors.Is(err, ErrNoResult) true.
func (e *NoResultError) Is(target error) bool { return target == ErrNoResult }

// FetchResult reads {prefix}{job_id}.json. A missing result is a
// *NoResultError (one more GetObject reads the job's claim). An object
// that is not result v1 is an error naming it; Raw is still returned.
func FetchResult(ctx context.Context, s Store, bucket, prefix, jobID string, now time.Time) (Fetched, error) {
	if err := ValidateJobID(jobID); err != nil {
		return Fetched{}, err
	}
	key := jobv1.ResultKey(prefix, jobID)
	f := Fetched{Location: "s3://" + bucket + "/" + key}
	body, err := getCapped(ctx, s, bucket, key)
	switch {
	case err != nil && awserr.NotFound(err) && awserr.Code(err) != "NoSuchBucket":
		nr := &NoResultError{JobID: jobID, Location: f.Location, Now: now}
		if cb, cerr := getCapped(ctx, s, bucket, jobv1.ClaimKey(prefix, jobID)); cerr == nil {
			var c Claim
			if json.Unmarshal(cb, &c) == nil {
				nr.Claim = &c
			}
		}
		return f, nr
	case err != nil && awserr.AccessDenied(err):
		return f, fmt.Errorf("%w (S3 answers 403, not 404, for a missing object when s3:ListBucket is not granted on the results prefix)", err)
	case err != nil:
		return f, err
	}
	f.Raw = body
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&f.Result); err != nil {
		return f, fmt.Errorf("%s is not a result object: %w", f.Location, err)
	}
	if f.Result.Version != jobv1.ResultVersion {
		return f, fmt.Errorf("%s is result version %s, this tierq reads %q", f.Location, strconv.Quote(oneLine(f.Result.Version, 20)), jobv1.ResultVersion)
	}
	return f, nil
}
