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
// Context fit decides what a tier can take; the task and the document's
// signals decide what it should take. Length alone never buys the most
// capable tier: a long summary or a long classification fits the standard
// tier's window (200,000 tokens with the shipped tiers) and suits its model.
// The last tier is spent only where a mistake is both likely and silent.
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
//	task-custom    task custom, tokens > standard_max_tokens               premium
//	task-extract   task extract on a structured document (below),          premium
//	               tokens > standard_max_tokens
//	task-extract   task extract on a structured document, shorter          standard
//	task-custom    task custom on a structured document, shorter           standard
//	non-ascii      non_ascii_share or more of the letters are non-ASCII    standard
//	size           tokens ≤ economy_max_tokens                             economy
//	size           otherwise, however long                                 standard
//
// Why each task lands where it does:
//
//   - summarize: a weaker summary leaves something out, and its reader sees
//     what is there; a small model summarizes short text well, and the
//     standard model long text. Only size and script move a summary.
//   - classify: one label from a given list. A small model chooses well on
//     longer text than it summarizes (classify_economy_max_tokens), and no
//     label needs the most capable model, however long the text.
//   - extract: the answer is checked for form (escalation retries one that
//     is not JSON or does not match the job's schema) but not for content.
//     On structured documents small models mix up table cells, paraphrase
//     code and misread figures, and a wrong value is still valid JSON, so
//     structure moves extraction to standard; on a long structured document
//     there are more near-identical rows and tables to confuse (the same
//     milestone table in each statement of work of a contract), so it goes
//     to premium. Extraction from unstructured text goes by size.
//   - custom: open-ended instructions, whose answer nothing checks. On a
//     short plain document they go by size, on a structured one to
//     standard; on a long document (over standard_max_tokens) they usually
//     ask for reasoning across all of it ("list the open questions in each
//     section, grouped by team"), where the most capable model earns its
//     price, so premium, structured or not.
//
// A document is structured when ComputeSignals finds tables or fenced code
// blocks, or when digits make up dense_digits_share or more of it.
// Non-Latin text goes to standard because small models are weaker there and
// the token estimate undercounts it (see EstimateTokens).
//
// standard_max_tokens used to send every document over it to premium. It
// now means only the size above which custom and structured extract jobs
// go to premium; files that set it load unchanged, and a summary over it
// now stays on standard.
//
// After any rule, the context-window check always applies: a tier is used
// only if estimated tokens plus its max_output_tokens fit its context_window,
// because Bedrock rejects (and reserves quota for) anything larger. A
// document that does not fit moves to the next tier that fits, and Reason
// says so. Only if no later tier fits does it move down, to the most capable
// tier that fits (a later tier can allow a larger answer in the same window);
// if no tier fits, Classify returns an error wrapping ErrTooLarge. Defaults:
// economy_max_tokens 2,000, standard_max_tokens 20,000,
// classify_economy_max_tokens 8,000, dense_digits_share 0.20,
// non_ascii_share 0.30.
//
// # Escalation
//
// ShouldEscalate retries a job on the next tier when the answer stopped at
// max_tokens, or when an extract answer is not valid JSON, at most
// escalation.max_steps times (default 1). ShouldEscalateMismatch does the
// same, under the same switch, for an extract answer that is JSON but does
// not match the job's own schema (the pipeline validates it).
//
// # Cost
//
// Prices are per model ID: a tier's prices are its model's, and a fallback
// model has its own (Tier.FallbackPrices; required when one ID is a global.
// profile and the other is not, since those are priced apart). They are the
// default (Standard) service tier's, with the other service tiers' token
// prices in Prices.ServiceTiers and cache writes priced per TTL. A call is
// priced with Tier.CallPrices(model that answered, service tier that
// served it) and Prices.Cost, whose formula is documented there; nothing
// else in tierq prices a call. Estimate prices a job before any call, as
// configured and at the default tier without caching, for dry runs.
package tiering
