// Package limiter bounds concurrent model calls per model ID.
//
// Every Bedrock call acquires a permit for its model and releases it with the
// call's outcome. Fixed holds a constant limit per model; the outcome is
// recorded so an adaptive limiter can replace it without changing callers.
// It does not retry, queue jobs across processes, or know about SQS.
package limiter
