// Package devstack is tierq's local AWS: kumo serving SQS and S3, and the
// Bedrock simulator, each on a fixed address, with the queues and buckets a
// worker needs created and the environment a shell needs to reach them.
// `tierq-dev up` serves it as a process (for terminals, docker-compose and
// the multi-process chaos test); `make demo` uses its queue and bucket
// creation in-process.
//
// It is for development and tests on one machine. It is not for production:
// it links all of kumo (about 32 MB), so only cmd/tierq-dev imports it, and
// its state is kept only when asked (--state) and only at a clean stop.
package devstack
