package jobv1

import "strings"

// ResultKey is the object key of a job's result: results are written to
// s3://{results bucket}/{prefix}{job_id}.json.
func ResultKey(prefix, jobID string) string { return prefix + jobID + ".json" }

// IsResultKey reports whether an object key under the results prefix is a
// result rather than something else the worker keeps there (a job's claim,
// {prefix}{job_id}.claim).
func IsResultKey(key string) bool { return strings.HasSuffix(key, ".json") }
