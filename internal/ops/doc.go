// Package ops answers an operator's questions about a running tierq
// deployment and fixes its one repairable state: how deep the job queue is,
// what is in the dead-letter queue and why, how many results succeeded,
// failed or were blocked and what they cost (Collect, for tierq status);
// moving dead letters back to the job queue (Redrive, for tierq redrive);
// and one job's result (FetchResult, for tierq result).
//
// It is for reading SQS, S3 and, optionally, CloudWatch through the real
// SDK clients, behind interfaces as small as each command needs, and for
// formatting what it read for a person (text) or a script (JSON).
//
// It is not for running jobs (package worker and pipeline), for cost
// reports over time or capacity advice (package sizing), or for pricing:
// every cost it shows is what the workers recorded in results.
//
// SQS has no way to look at a message without receiving it. Reading the
// dead-letter queue therefore receives its messages, hides each one for a
// short while so that one pass sees each message once, and then makes them
// visible again (ChangeMessageVisibility 0) without deleting them. The
// cost is one ApproximateReceiveCount per message per pass, which tierq
// never reads on a dead-letter queue, and a few seconds in which another
// reader of the dead-letter queue would not see them. A dead-letter queue
// with a redrive policy of its own is not read, since receiving could move
// its messages on.
package ops
