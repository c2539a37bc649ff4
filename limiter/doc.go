// Package limiter bounds and paces model calls per model ID.
//
// Every Bedrock call acquires a permit for its model, reserving the tokens
// Bedrock itself reserves at the start of a call (estimated input +
// maxTokens), and releases it with the call's Outcome: Success, Dropped
// (ThrottlingException, ModelNotReadyException, a quota error) or Ignored
// (anything that says nothing about capacity). Fixed holds a constant limit
// per model. Adaptive learns each model's limit and token rate from the
// outcomes.
//
// # How Adaptive learns
//
// Bedrock counts quota per model per minute: each call reserves input +
// maxTokens against the minute's TPM (and one request against RPM) when it
// starts. A concurrency limit cannot express that: the minute's tokens run
// out part-way through it, and every call after that is throttled until
// the minute ends, however few are in flight. So each model learns two
// things from throttles:
//
// A rate: tokens reserved per Config.Window (default 1m). A sliding log of
// the reservations admitted in the last Window is kept; a call is admitted
// only if its reservation plus the log's fits the rate. A throttled call
// leaves the log (Bedrock and the simulator reserve only for admitted
// calls); a successful or ignored one stays until it is a Window old.
//
//   - The rate is unlearned (no pacing) until the first throttle. Then it
//     is Cut (default 0.95) × the tokens admitted in the last Window and
//     not throttled: what the quota let through, less a margin. With less
//     than a Window of history that figure is extrapolated to a Window.
//   - Later throttles cut it to Cut × min(rate, that window's tokens), at
//     most once per Window, unless the throttled call was admitted after
//     the last cut: then the cut rate is still too high (the quota itself
//     dropped), and such recuts go deeper: Cut², then Cut⁴.
//   - A Window in which the rate held calls back (including Available
//     returning 0) and no cut happened grows it by the larger of Grow
//     (default 1%) and one average call, doubling with each such Window in
//     a row (up to 16×): additive growth lets processes sharing a quota
//     converge to equal shares; doubling lets a rate learned too low
//     recover in a few Windows. MinRate is the floor.
//
// A concurrency limit and a token budget on the reservations in flight,
// AIMD-style as Netflix's AIMDLimit and TCP, as the second guard (for
// concurrency-bound capacity, ModelNotReady, and before a rate is learned):
//
//   - Multiplicative decrease: a Dropped outcome multiplies the limit and
//     the budget by Config.Decrease (default 0.7), down to MinLimit and
//     MinTokens. Only what was in use shrinks (both if neither was).
//   - One decrease per burst: only a drop from a permit admitted since the
//     last decrease counts, since earlier ones were sent at the old limit.
//     Once a rate is learned, the limit decreases at most once per Window,
//     together with a rate cut: calls admitted after a cut are throttled
//     until the quota minute ends, and cutting for each collapsed the
//     limit from 10 to 1 in a second.
//   - Additive increase, only while in use and while the rate is not what
//     holds calls back: a Success grows the limit by Increase/limit when at
//     least UsedFraction (default 0.8) of it was in flight, so a full
//     limit's worth adds Increase (default 1). The budget grows likewise.
//   - Latency is not loss: however long a call takes, it is not a drop.
//
// Several processes sharing one quota converge to about equal shares
// without coordinating, because each decreases multiplicatively on its own
// throttles and increases additively (the Chiu–Jain argument for AIMD).
//
// # Admission and waiting
//
// A call is admitted when its model has fewer calls in flight than the
// limit and its reservation fits the budget and the rate. A call larger than
// the whole budget is admitted when nothing else of its model is in flight,
// and one larger than the rate when the window holds nothing else, so it
// runs alone rather than never. Waiters are served in FIFO order per model,
// except that up to Config.MaxBypass later calls that fit the budget may pass
// a call that does not; then admission stops until that call fits. Many small
// calls thus run wide, a few huge documents cannot starve the quota, and a
// huge document waits for at most MaxBypass small ones before the model
// drains for it. Releases and limit increases admit waiters at once; a
// timer (Config.AfterFunc) admits them when reservations leave the window.
//
// Available reports how many more calls could be admitted soon (0 for a
// model whose window is full), which the worker's receive loop uses so it
// only takes messages the limiters can serve. Backoff suggests a jittered
// wait after a drop, growing with the model's recent drops and covering the
// time until the window has room; the caller waits and acquires again
// without spending a retry attempt.
//
// # How it is built
//
// Adaptive composes four small controllers per model, the way the AWS
// SDK's adaptive retry mode composes standard retries with a separate
// client rate limiter. Each is a plain value in its own file, tested on its
// own; Adaptive's one lock serialises them and wires their answers
// together:
//
//   - aimd (aimd.go): the concurrency limit and the token budget on the
//     calls in flight, grown on successes while in use and shrunk on a
//     counted drop.
//   - pacer (pacer.go): the rate, with its log of the last Window's
//     reservations; cut on throttles, grown after a Window that held calls
//     back.
//   - fifo (fifo.go): the order waiting calls are served in, with the
//     bounded bypass.
//   - dropScore and backoff (backoff.go): the decaying count of recent
//     drops and the wait Backoff suggests from it.
//
// A waiting call is admitted, in fifo's order, while aimd has room and
// both aimd and pacer say it fits. Its outcome goes to aimd (only for calls
// admitted under the current limits) and, for a drop, to pacer and the drop
// score; pacer's first cut in a Window is what lets aimd shrink.
//
// Time moves only in operations: Acquire, Release and the wake-up timer
// first bring the model's window up to the present (reservations a Window
// old leave it; a growth period that has ended grows the rate and is
// reported), then decide. The queries (Available, Backoff, Snapshot) read
// a copy brought up to the present and change nothing, so how often they
// are called does not matter, with one exception by design: Available
// answering 0 for a model that the rate holds back counts, for the rate's
// growth, as a call held back (calling it again records nothing new).
//
// # What it is not
//
// It does not retry, sleep, measure latency, or coordinate across
// processes, and it is not told the quota: Bedrock's throttles are its only
// signal of it (the learned rate is an estimate of this process's share).
// It does not count RPM separately or know actual (settled) usage. It does
// not know about SQS.
package limiter
