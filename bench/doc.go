// Package bench holds tierq's end-to-end benchmarks; it has no code of its
// own outside its tests. Run it with `make bench`.
//
// BenchmarkThroughput runs the worker (internal/app, the same code as `tierq
// worker`) against the Bedrock simulator and kumo's SQS and S3 over a fixed,
// seeded job set with a per-model quota, and compares four ways of calling
// the model on the same jobs: a fixed concurrency of 4; a fixed concurrency
// of 64 with the AWS SDK's standard retries; the same with the SDK's adaptive
// retry mode; and tierq's adaptive limiter. Each is run in three scenarios:
// steady load, the quota halved mid-run, and three workers sharing one
// quota. Every run has its own simulator and all of them run at once, on a
// quota minute compressed to 10s (TIERQ_BENCH_MINUTE changes it). It prints
// a table and writes results/throughput.json so runs can be compared.
//
// BenchmarkWorkerMemory builds the real cmd/tierq binary, runs `tierq worker`
// as a child process with 100,000 messages waiting in the queue, and
// reports its peak resident memory (results/memory.json).
//
// BenchmarkOverhead (issue 6) compares, in alternating trials on the same
// job set, a plain SDK loop (receive 10, Converse with the tier's guardrail,
// PutObject If-None-Match: *, DeleteMessageBatch), the same loop with a
// HeadObject per job, and tierq's worker, at concurrency 8, 32 and 64, on
// zero-latency emulators served by a child process (bench/internal/emu) so
// that the CPU time it reports is the client side's alone. It prints jobs/s,
// CPU per 1,000 jobs and tierq's share of the loop, and writes
// results/overhead.json. TIERQ_BENCH_JOBS (3,000) and TIERQ_BENCH_ROUNDS (2)
// size it; TIERQ_BENCH_VARIANTS and TIERQ_BENCH_CONCURRENCY pick a subset to
// profile.
//
// The benchmarks need a few minutes, loopback networking and nothing else;
// they skip under -short. They are not timed tests and assert nothing: they
// measure, and the targets they report against are in the JSON. The pure
// figure computations (bounds, percentiles, re-convergence) are covered by
// ordinary tests that run with `make test`.
package bench
