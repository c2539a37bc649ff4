// Package iampolicy generates the least-privilege IAM policy of a tierq
// worker's task role from its configuration: the tiers (their models,
// fallback models and guardrails), the job and dead-letter queues, the
// results bucket and prefix, and the input buckets. `tierq iam-policy` prints
// it, and deploy/iam-task-policy.json is its output for the default tiers.
//
// It is for: granting exactly the API calls the worker binary makes
// (ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibility(Batch) and
// SendMessage on SQS; HeadObject, GetObject and PutObject on S3; Converse on
// Bedrock) on exactly the resources the configuration names, requiring each
// tier's guardrail on every model call, and denying Bedrock API keys so only
// the role's own credentials work. The output is deterministic, so a golden
// comparison is exact.
//
// It is not for: calling AWS (it is pure and imports no SDK), checking that
// the resources exist, policies of other principals (the submit command, the
// ECS execution role that pulls the image and writes logs), resource-based
// policies (bucket, queue or guardrail policies), or KMS grants for
// customer-managed keys on the queues or buckets, which the configuration
// does not name.
package iampolicy
