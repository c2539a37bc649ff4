// Package limiter bounds concurrent model calls per model ID.
//
// Every Bedrock call acquires a permit for its model, reserving the tokens
// Bedrock itself reserves at the start of a call (estimated input +
// maxTokens), and releases it with the call's Outcome: Success, Dropped
// (ThrottlingException, ModelNotReadyException, a quota error) or Ignored
// (anything that says nothing about capacity). Fixed holds a constant limit
// per model. Adaptive learns each model's limit from the outcomes.
//
// # How Adaptive learns
//
// Each model has a concurrency limit and a token budget (the sum of the
// reservations in flight), both learned loss-based, AIMD-style, as
// Netflix's AIMDLimit and TCP do:
//
//   - Multiplicative decrease: a Dropped outcome multiplies the limit and
//     the budget by Config.Decrease (default 0.7), down to MinLimit and
//     MinTokens. Only what was in use shrinks (both if neither was).
//   - One decrease per burst: only a drop from a permit admitted since the
//     last decrease counts. Calls admitted before it were sent at the old
//     limit and their throttles are the same congestion event; this works
//     whatever the calls' durations, where a cooldown would have to guess
//     them. Successes of such calls do not grow the limit either.
//   - Additive increase, only while in use: a Success grows the limit by
//     Increase/limit when at least UsedFraction (default 0.8) of the limit
//     was in flight, so a full limit's worth of successes adds Increase
//     (default 1). The budget grows the same way, by TokenIncrease per
//     budget's worth of reservations, when it was at least UsedFraction
//     full or held back the next waiter. An idle or half-used limit never
//     grows, and nothing resets to the maximum after idling.
//   - Latency is not loss: however long a call takes, it is not a drop.
//     LLM latency grows with output tokens, so delay-based limiters
//     (Vegas, Gradient2) and timeout-as-drop rules misread long jobs.
//
// Several worker processes sharing one quota converge to about equal shares
// without coordinating, because each decreases multiplicatively on its own
// throttles and increases by the same amount per round trip whatever its
// current limit (the Chiu–Jain argument for AIMD).
//
// # Admission and waiting
//
// A call is admitted when its model has fewer calls in flight than the
// limit and its reservation fits the budget. A call larger than the whole
// budget is admitted when nothing else of its model is in flight, so it runs
// alone rather than never. Waiters are served in FIFO order per model,
// except that up to Config.MaxBypass later calls that fit the budget may pass
// a call that does not; then admission stops until that call fits. Many small
// calls thus run wide, a few huge documents cannot starve the quota, and a
// huge document waits for at most MaxBypass small ones before the model
// drains for it. Releases and limit increases admit waiters at once.
//
// Available reports how many more calls could be admitted soon, which the
// worker's receive loop uses so it only takes messages the limiters can
// serve. Backoff suggests a jittered wait after a drop, growing with the
// model's recent drops; the caller waits and acquires again without
// spending a retry attempt.
//
// # What it is not
//
// It does not retry, sleep, measure latency, or coordinate across
// processes, and it does not enforce a tokens-per-minute rate: Bedrock's
// throttles are its only signal of the quota. It does not know about SQS.
package limiter
