// Package worker moves messages between an SQS queue and a Processor safely.
//
// It is for: long-polling only as many messages as there are free processing
// slots and one batch ahead of them (and downstream Capacity), running each
// slot's jobs on a long-lived goroutine, keeping each running job's message
// invisible with a visibility heartbeat (and cancelling a job whose message
// it can no longer keep invisible), deleting finished messages in
// batches, applying the Processor contract's failure policy (delete, release
// after a delay, or copy to the dead-letter queue and delete), surviving
// Processor panics, and shutting down in two phases: stop receiving and let
// jobs finish within a drain window, then cancel them and release their
// messages so another worker takes them at once.
//
// It is not for: knowing what a job is. It never parses a message body,
// retries a job in-process, or decides whether a failure is permanent: the
// Processor says so through the error it returns (see Processor). Delivery is
// at least once; a message can come back after a failed delete or an expired
// heartbeat, so processing must be idempotent (the pipeline's exactly-once
// result write makes it so).
//
// The files follow a message's life: worker.go receives and holds it;
// contract.go and outcome.go are what a Processor returns (Release,
// ReleaseAfter, ReleaseWithin, DeadLetter); lifecycle.go is the one state
// machine of a held message; heartbeat.go keeps it invisible; settle.go
// acts on the outcome through release.go, deadletter.go and delete.go;
// batch.go runs SQS's batch calls.
package worker
