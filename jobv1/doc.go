// Package jobv1 is tierq's wire contract: job message v1, the body of one SQS
// message, and result v1, the object written once per job to S3.
//
// It holds the Job and Result types, ParseJob (the one reader of job
// messages: strict, with the published JSON Schema, JobSchema, as the source
// of truth), ParseS3URI (exact s3://bucket/key references), the statuses and
// error codes results carry, where results live (ResultKey), and what of a
// job reaches the model (PromptParts: every part that came from the job, for
// the guardrail to see).
//
// It is for every program that writes or reads jobs and results: the worker,
// tierq submit, tierq sizing, and upstream producers written in Go. It is not
// for running jobs (package pipeline), choosing tiers or prices (package
// tiering), or talking to AWS: it imports nothing of tierq and no AWS SDK, so
// a program that reads a result links neither the worker nor Bedrock's
// client.
package jobv1
