// Package awserr classifies AWS errors by behaviour, once, for every part of
// tierq that calls AWS: the worker (SQS), the pipeline (S3 and Bedrock) and
// tierq submit (SQS and S3). Like the SDK's own aws/retry package, it is a
// list of small checks on the error's AWS code (errors.As on
// interface{ ErrorCode() string }) and HTTP status, never on message text.
//
// It is for answering "what kind of failure is this": throttling, rejected
// credentials, a missing resource, a failed condition, a fault of the
// request. It is not for deciding what to do about it (retry, release, fail
// the job): each caller owns that policy.
package awserr
