// Package chaos holds tierq's multi-process chaos test: the real tierq and
// tierq-dev binaries, `tierq-dev up` as the AWS, three `tierq worker`
// processes of which one is killed with SIGKILL every few seconds and
// restarted, and `tierq submit` enqueuing the jobs. It checks what a crash
// must never cost (a lost job, a second result, a message stuck in a queue)
// and measures what it does cost (extra model calls, recovery time).
//
// It is for `make chaos` (1,000 jobs, the workers' default timeouts) and a
// shorter run in `make test` (300 jobs, short visibility timeout and claim
// lease so a killed worker's jobs come back within seconds). It has no code
// outside its test.
package chaos
