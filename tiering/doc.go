// Package tiering decides which model tier a job gets, when to escalate it to
// the next tier, and what a call costs.
//
// It is for: loading and validating the tier configuration (one YAML file
// holding models, settings and prices; see default.yaml), classifying a job
// from its metadata, deciding escalation from a model's answer, and pricing
// usage, both after a call (the worker) and before one (submit --dry-run,
// sizing). All of tierq prices calls with Prices.Cost, so figures agree.
//
// It is not for: calling Bedrock, reading files or queues, counting tokens
// exactly (EstimateTokens is a 4-characters-per-token estimate), or knowing
// prices. The package is pure: no AWS imports and no I/O beyond the bytes
// handed to Load, so it is tested with table tests over testdata/tiering.
// Prices live only in configuration; the shipped ones are examples.
//
// # Classification rules
//
// Classify applies the first rule that matches. Rules address tiers by
// position: "economy" is the first tier, "standard" the second and "premium"
// the last (with fewer tiers they coincide). Thresholds are in Rules.
//
//	rule           when                                                    tier
//	override       job names a tier in Override (unknown name: error)      that tier
//	hint           job names a tier in Hint and the document fits it       that tier
//	               (unknown or too small: noted in Reason, rules go on)
//	task-classify  task classify, tokens ≤ classify_economy_max_tokens     economy
//	task-classify  task classify, larger                                   standard
//	size           tokens > standard_max_tokens                            premium
//	task-extract   task extract on a structured document (below)           standard
//	task-custom    task custom on a structured document                    standard
//	non-ascii      non_ascii_share or more of the letters are non-ASCII    standard
//	size           tokens ≤ economy_max_tokens                             economy
//	size           otherwise                                               standard
//
// A document is structured when ComputeSignals finds tables or fenced code
// blocks, or when digits make up dense_digits_share or more of it: small
// models mix up table cells, paraphrase code and misread figures, and
// extraction is where that turns into wrong answers. Summaries tolerate it,
// so structure alone does not move a summary. Classify stops at standard
// because one label never needs the most capable model.
//
// After any rule, the context-window check always applies: a tier is used
// only if estimated tokens plus its max_output_tokens fit its context_window,
// because Bedrock rejects (and reserves quota for) anything larger. A
// document that does not fit moves to the next tier that fits, and Reason
// says so. Only if no later tier fits does it move down, to the most capable
// tier that fits (a later tier can allow a larger answer in the same window);
// if no tier fits, Classify returns an error wrapping ErrTooLarge. Defaults: economy_max_tokens 2,000, standard_max_tokens
// 20,000, classify_economy_max_tokens 8,000, dense_digits_share 0.20,
// non_ascii_share 0.30.
//
// # Escalation
//
// ShouldEscalate retries a job on the next tier when the answer stopped at
// max_tokens, or when an extract answer is not valid JSON, at most
// escalation.max_steps times (default 1). ShouldEscalateMismatch does the
// same, under the same switch, for an extract answer that is JSON but does
// not match the job's own schema (the pipeline validates it).
package tiering
