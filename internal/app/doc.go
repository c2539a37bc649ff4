// Package app assembles a tierq worker: from Settings and AWS clients it builds
// the tier configuration, the model limiter, the pipeline and the SQS worker,
// and runs them. cmd/tierq fills Settings from a YAML file, TIERQ_*
// environment variables and flags; the demo fills them in code and passes
// emulator-backed clients.
//
// It is for what sits where the parts meet: the checks between settings of
// different components (the claim lease against the visibility timeout),
// configuration errors that name the setting (SettingError), the start-up
// checks of every AWS resource the tiers name (Worker.Preflight), and the
// worker's logger (NewLogger: JSON lines, durations as "30s", the AWS SDK's
// own messages routed through it by SDKLogger).
//
// It is not for business logic: jobs are run by pipeline, messages are
// handled by worker, tiers are chosen by tiering.
package app
