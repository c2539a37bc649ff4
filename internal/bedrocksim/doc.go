// Package bedrocksim is an in-process simulator of the Amazon Bedrock Runtime
// API, wire-compatible with the aws-sdk-go-v2 bedrockruntime client (restJson1).
//
// It serves Converse, ApplyGuardrail and CountTokens as an http.Handler, so the
// real SDK client can be pointed at it with BaseEndpoint (or
// AWS_ENDPOINT_URL_BEDROCK_RUNTIME) in tests, the demo, docker-compose and
// benchmarks. It models what matters to tierq:
//
//   - request validation and error encoding the SDK turns into typed errors
//     (ThrottlingException, ValidationException, ...), with Bedrock's status codes;
//   - per-model RPM and TPM quotas with Bedrock's accounting: reserve
//     input + maxTokens when a call starts, settle to input + cache writes +
//     output × burndown when it ends, in a window whose length is configurable;
//   - latency that grows with output length (time to first token plus time per
//     output token, with jitter), scalable to zero;
//   - service tiers (Converse's serviceTier: default, flex, priority,
//     reserved) where a model's config lists them (service_tiers): the tier
//     that served the call is echoed; flex is slower (flex.latency_factor,
//     default 2) and throttled first, above flex.quota_share (default 0.8)
//     of the shared quota; priority is faster (priority.latency_factor, 0.8);
//     reserved is served from reserved_tpm and overflows to default. A tier
//     the model does not take, or put in inferenceConfig or
//     additionalModelRequestFields, is a ValidationException;
//   - prompt caching as Bedrock does it: up to four cachePoints with a 5m or
//     1h ttl (cache_ttls), TTLs non-increasing from system to messages,
//     nothing cached below cache_min_tokens, entries that expire after their
//     TTL in simulated minutes and are refreshed by a read, and usage with
//     cacheRead/cacheWrite tokens outside inputTokens and cacheDetails by TTL;
//   - structured outputs (outputConfig.textFormat json_schema) on models with
//     structured_outputs: the answer is a JSON instance built from the schema;
//   - deterministic, task-shaped output (a summary is shorter than the document,
//     a classification is one label, an extraction is a JSON object);
//   - guardrails: PII (anonymize or block), denied topics, a prompt-attack filter,
//     guardContent scoping, traces and text-unit usage; the built-in
//     tierq-default is parsed from deploy/cloudformation/guardrail.yaml, the
//     AWS::Bedrock::Guardrail the CloudFormation template deploys
//     (ParseGuardrailDefinition), so local tests and AWS run one definition;
//   - fault injection and an admin API (/_sim/stats, /_sim/quota, /_sim/faults).
//
// It is not a language model and not a load balancer: outputs are built from the
// prompt by fixed rules, and quotas are counted per simulator instance.
// See README.md, section "Bedrock simulator", for what is and is not modelled.
package bedrocksim
