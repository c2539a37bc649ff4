package jobv1

import (
	"strings"
	"time"
)

// ResultKey is the object key of a job's result: results are written to
// s3://{results bucket}/{prefix}{job_id}.json.
func ResultKey(prefix, jobID string) string { return prefix + jobID + ".json" }

// IsResultKey reports whether an object key under the results prefix is a
// result rather than something else the worker keeps there (a job's claim,
// {prefix}{job_id}.claim).
func IsResultKey(key string) bool { return strings.HasSuffix(key, ".json") }

// ClaimSuffix ends a claim's key.
const ClaimSuffix = ".claim"

// ClaimKey is the object key of a job's claim, next to its result:
// {prefix}{job_id}.claim. A worker creates it before calling the model,
// and it stays when the job is done: every result has one beside it.
func ClaimKey(prefix, jobID string) string { return prefix + jobID + ClaimSuffix }

// Claim is a claim object's body: which worker holds the job and until
// when. Operator tools read it to say whether a job without a result is
// running or waiting.
type Claim struct {
	JobID  string `json:"job_id"`
	Worker string `json:"worker"`
	// Token is random per hold: a delivery that finds a claim after its own
	// write's response was lost (the write landed; the SDK's retry got 412)
	// knows the claim for its own by it.
	Token string    `json:"token"`
	Until time.Time `json:"lease_until"`
}
