// Package app assembles a tierq worker: from Settings and AWS clients it builds
// the tier configuration, the model limiter, the pipeline and the SQS worker,
// and runs them. cmd/tierq fills Settings from a YAML file, TIERQ_*
// environment variables and flags; the demo fills them in code and passes
// emulator-backed clients. It holds no business logic of its own.
package app
