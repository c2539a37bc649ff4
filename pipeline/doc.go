// Package pipeline runs one job from an SQS message body to a result object
// in S3 and one CloudWatch EMF metrics line.
//
// Pipeline implements worker.Processor. For each message it parses job
// message v1 (jobv1.ParseJob), claims the job so that one delivery calls
// the model, acknowledging a job whose claim and result exist (claim.go),
// loads the document (inline, or from an allowed S3 bucket), chooses a tier
// (package tiering), calls Bedrock Converse with the tier's guardrail under a
// per-model limiter, escalates to the next tier when tiering says so, prices
// every call, writes result v1 exactly once (PutObject If-None-Match: *) and
// emits metrics. The job and result formats are the contract with upstream
// and downstream, in package jobv1 with their JSON Schemas.
//
// Outcomes follow worker.Processor's contract, with worker's constructors:
// nil when a result exists (succeeded, failed or blocked: a job that can
// never succeed is answered with a failed result, not retried);
// worker.DeadLetter for a message that is not a job at all; worker.Release
// (or ReleaseAfter, ReleaseWithin) for transient trouble (throttling beyond
// the in-process retries, S3 errors, AWS refusing the worker's credentials),
// in which case nothing was written and the message comes back later. The
// worker owns the release delay. A job ID gets one result ever, so only the
// job's own faults end in a failed result, never the worker's.
//
// Money already spent is not spent twice: a failed escalation keeps the
// answer of the tier before it, and the result write outlives the job's
// context and retries S3 errors in-process. Preflight checks the results
// bucket at start-up, before any job pays for a model call it cannot record.
//
// It is not for: receiving or deleting SQS messages (package worker),
// choosing tiers or prices (package tiering), or bounding concurrency
// (package limiter), nor for reading jobs or results without running them
// (package jobv1). It depends on three small interfaces (Converser, Store,
// Limiter) that the AWS SDK clients and limiter.Fixed satisfy, so tests run
// it against emulators or hand-written fakes.
package pipeline
