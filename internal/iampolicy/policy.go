package iampolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// Policy is an IAM policy document. Its JSON encoding is the policy.
type Policy struct {
	Version   string
	Statement []Statement
}

// Statement is one statement of a Policy. Action, Resource and condition
// values are sorted and always lists, so the encoding is stable.
type Statement struct {
	Sid      string
	Effect   string
	Action   []string
	Resource []string
	// Condition maps an operator (StringEquals) to condition keys and their
	// values.
	Condition map[string]map[string][]string `json:",omitempty"`
}

// ManagedPolicyMaxChars is the size limit of a customer managed policy, in
// characters not counting white space; an inline role policy may have
// 10,240 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
const ManagedPolicyMaxChars = 6144

// Generate applies cfg's defaults, validates it and returns the worker's
// policy. The error lists every problem.
func Generate(cfg Config) (Policy, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return Policy{}, err
	}
	pl, _ := cfg.tierGrants() // Validate reported its errors
	var st []Statement
	st = append(st, cfg.queueStatements()...)
	st = append(st, cfg.bucketStatements()...)
	invoke, deny := pl.invokeStatements()
	st = append(st, invoke...)
	st = append(st, countTokensStatement(invoke)...)
	st = append(st, pl.guardrailStatements()...)
	st = append(st, deny...)
	st = append(st, Statement{
		// Bedrock API keys are bearer tokens: a short-term one is minted
		// offline from the role's own session credentials and carries its
		// permissions, so denying their use is the only way to keep the
		// role's grants to SigV4-signed calls. Both endpoints have their
		// own action: "To fully prevent all API key-based access, you must
		// deny both actions"
		// (https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-permissions.html).
		// Unconditional, so it covers both bedrock:bearerTokenType values
		// (SHORT_TERM, LONG_TERM). iam:CreateServiceSpecificCredential, the
		// other half of AWS's example, is left out: long-term keys belong to
		// IAM users, and this role has no IAM permissions at all.
		Sid: "DenyBedrockAPIKeys", Effect: "Deny",
		Action:   []string{"bedrock-mantle:CallWithBearerToken", "bedrock:CallWithBearerToken"},
		Resource: []string{"*"},
	})
	return Policy{Version: "2012-10-17", Statement: st}, nil
}

// queueStatements grant exactly the SQS calls of worker.Queue. Batch calls
// are authorised by the single action: "setting permissions for SendMessage,
// DeleteMessage, or ChangeMessageVisibility sets permissions for the
// corresponding batch versions"
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-batch-api.html).
// GetQueueAttributes is the start-up check that each queue exists.
func (c Config) queueStatements() []Statement {
	return []Statement{{
		// ReceiveMessage -> sqs:ReceiveMessage; DeleteMessageBatch ->
		// sqs:DeleteMessage; ChangeMessageVisibility (heartbeat, release)
		// and ChangeMessageVisibilityBatch (release on drain) ->
		// sqs:ChangeMessageVisibility; GetQueueAttributes (start-up check).
		Sid: "ReceiveJobs", Effect: "Allow",
		Action:   []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
		Resource: []string{c.QueueARN},
	}, {
		// SendMessage of a message that is not a job to the dead-letter
		// queue; the original is then deleted from the job queue.
		// GetQueueAttributes: the start-up check that the queue exists.
		Sid: "DeadLetterPoisonMessages", Effect: "Allow",
		Action:   []string{"sqs:GetQueueAttributes", "sqs:SendMessage"},
		Resource: []string{c.DeadLetterQueueARN},
	}}
}

// countTokensStatement grants bedrock:CountTokens on the models the worker
// may invoke, for the start-up checks' count-tokens modes
// (--model-check). CountTokens is free and has no guardrail, so it gets
// its own statement without the guardrail condition.
func countTokensStatement(invoke []Statement) []Statement {
	res := map[string]bool{}
	for _, s := range invoke {
		if s.Effect == "Allow" && slices.Contains(s.Action, "bedrock:InvokeModel") {
			for _, r := range s.Resource {
				res[r] = true
			}
		}
	}
	if len(res) == 0 {
		return nil
	}
	return []Statement{{Sid: "CountTokensForStartupChecks", Effect: "Allow", Action: []string{"bedrock:CountTokens"},
		Resource: slices.Sorted(maps.Keys(res))}}
}

// bucketStatements grant exactly the S3 calls of pipeline.Store.
func (c Config) bucketStatements() []Statement {
	p := c.partition()
	bucket := func(b string) string { return "arn:" + p + ":s3:::" + b }
	st := []Statement{{
		// HeadObject (is there a result?) -> s3:GetObject ("To use HEAD,
		// you must have the s3:GetObject permission",
		// https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html);
		// GetObject (read back a result, a claim, the preflight key) ->
		// s3:GetObject; PutObject with If-None-Match: * (write once) or
		// If-Match (replace a claim) -> s3:PutObject. Results, claims
		// ({prefix}{job_id}.claim) and the preflight key all live under the
		// prefix.
		Sid: "ReadAndWriteResults", Effect: "Allow",
		Action:   []string{"s3:GetObject", "s3:PutObject"},
		Resource: []string{bucket(c.ResultsBucket) + "/" + c.ResultsPrefix + "*"},
	}, {
		// Never called, but without it S3 answers a HEAD or GET of a missing
		// key with 403 instead of 404 ("If you don't have the s3:ListBucket
		// permission, Amazon S3 returns an HTTP status code 403", same page),
		// and every job would look as if its result might exist. S3 checks it
		// with s3:prefix set to the requested key, so the prefix condition
		// keeps the answer (and listing) to the results prefix; Ceph matched
		// that AWS behaviour in https://github.com/ceph/ceph/pull/68577.
		Sid: "TellMissingResultsFromForbidden", Effect: "Allow",
		Action:    []string{"s3:ListBucket"},
		Resource:  []string{bucket(c.ResultsBucket)},
		Condition: map[string]map[string][]string{"StringLike": {"s3:prefix": {c.ResultsPrefix + "*"}}},
	}}
	if len(c.InputBuckets) == 0 {
		return st
	}
	// bucket -> prefixes; "" (the whole bucket) subsumes its prefixes.
	in := map[string]map[string]bool{}
	for _, spec := range c.InputBuckets {
		b, prefix, _ := strings.Cut(spec, "/")
		if in[b] == nil {
			in[b] = map[string]bool{}
		}
		in[b][prefix] = true
	}
	var objects []string
	for _, b := range slices.Sorted(maps.Keys(in)) {
		if in[b][""] {
			in[b] = map[string]bool{"": true}
		}
		for _, prefix := range slices.Sorted(maps.Keys(in[b])) {
			objects = append(objects, bucket(b)+"/"+prefix+"*")
		}
	}
	// GetObject of a job's document_uri -> s3:GetObject.
	st = append(st, Statement{Sid: "ReadInputDocuments", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: objects})
	if !c.ListInputBuckets {
		return st
	}
	// One statement per bucket, so one bucket's prefixes do not open
	// another's; whole buckets share one without a condition.
	var whole []string
	var prefixed []Statement
	for _, b := range slices.Sorted(maps.Keys(in)) {
		if in[b][""] {
			whole = append(whole, bucket(b))
			continue
		}
		var like []string
		for _, prefix := range slices.Sorted(maps.Keys(in[b])) {
			like = append(like, prefix+"*")
		}
		prefixed = append(prefixed, Statement{Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{bucket(b)},
			Condition: map[string]map[string][]string{"StringLike": {"s3:prefix": like}}})
	}
	if len(whole) > 0 {
		prefixed = append([]Statement{{Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: whole}}, prefixed...)
	}
	return append(st, numbered("TellMissingInputsFromForbidden", prefixed)...)
}

// invokeStatements grant bedrock:InvokeModel on the tiers' models, each only
// with its tiers' guardrails, and deny it without them.
func (pl *plan) invokeStatements() (allow, deny []Statement) {
	// Grants merge into one statement when they share a statement name,
	// conditions other than bedrock:InferenceProfileArn, and guardrails. The
	// profile ARNs of a merged statement become one list: a profile only
	// ever routes to its own model, so model A allowed through profile B
	// grants nothing a call can use.
	type group struct {
		sid, requestedRegion, guards string
	}
	type merged struct {
		resources, profiles, guards map[string]bool
	}
	groups := map[group]*merged{}
	guarded := map[string]bool{}   // resources guarded calls use
	open := map[string]bool{}      // resources unguarded calls use
	allGuards := map[string]bool{} // every guardrail value
	for _, u := range pl.models {
		guards := slices.Sorted(maps.Keys(u.guardrails))
		if u.unguarded {
			guards = nil
		}
		for _, g := range u.grants {
			k := group{g.sid, g.requestedRegion, strings.Join(guards, "\n")}
			m := groups[k]
			if m == nil {
				m = &merged{resources: map[string]bool{}, profiles: map[string]bool{}, guards: map[string]bool{}}
				groups[k] = m
			}
			m.resources[g.resource] = true
			if g.profileARN != "" {
				m.profiles[g.profileARN] = true
			}
			for _, v := range guards {
				m.guards[v] = true
				allGuards[v] = true
			}
			if u.unguarded {
				open[g.resource] = true
			} else {
				guarded[g.resource] = true
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(groups), func(a, b group) int {
		if d := slices.Index(invokeOrder, a.sid) - slices.Index(invokeOrder, b.sid); d != 0 {
			return d
		}
		return strings.Compare(a.requestedRegion+"\x00"+a.guards, b.requestedRegion+"\x00"+b.guards)
	})
	var st []Statement
	for _, sid := range invokeOrder {
		var same []Statement
		for _, k := range keys {
			if k.sid != sid {
				continue
			}
			m := groups[k]
			cond := map[string][]string{}
			if k.requestedRegion != "" {
				cond["aws:RequestedRegion"] = []string{k.requestedRegion}
			}
			if len(m.profiles) > 0 {
				cond["bedrock:InferenceProfileArn"] = slices.Sorted(maps.Keys(m.profiles))
			}
			if len(m.guards) > 0 {
				// "You can enforce the use of a specific guardrail for model
				// inference by including the bedrock:GuardrailIdentifier
				// condition key" (guardrails-permissions-id.html). Several
				// values: any of the model's tiers' guardrails.
				cond["bedrock:GuardrailIdentifier"] = slices.Sorted(maps.Keys(m.guards))
			}
			s := Statement{Effect: "Allow", Action: []string{"bedrock:InvokeModel"}, Resource: slices.Sorted(maps.Keys(m.resources))}
			if len(cond) > 0 {
				s.Condition = map[string]map[string][]string{"StringEquals": cond}
			}
			same = append(same, s)
		}
		st = append(st, numbered(sid, same)...)
	}
	if len(allGuards) == 0 {
		return st, nil
	}
	// The allows above already require the guardrail; this deny keeps it
	// required whatever else is attached to the role ("The explicit deny
	// keeps the user request from calling the listed actions with any other
	// GuardrailIdentifier and guardrail version no matter what other
	// permissions the user might have", guardrails-permissions-id.html,
	// Example 1). A request without a guardrail has no key, and
	// StringNotEquals is true for a missing key, so it is denied too. On
	// every resource, unless a tier is unguarded on purpose: then on what
	// only guarded calls use.
	resources := []string{"*"}
	if len(open) > 0 {
		maps.DeleteFunc(guarded, func(r string, _ bool) bool { return open[r] })
		resources = slices.Sorted(maps.Keys(guarded))
	}
	if len(resources) == 0 {
		return st, nil
	}
	return st, []Statement{{
		Sid: "DenyInvokeWithoutTierGuardrail", Effect: "Deny",
		Action:    []string{"bedrock:InvokeModel"},
		Resource:  resources,
		Condition: map[string]map[string][]string{"StringNotEquals": {"bedrock:GuardrailIdentifier": slices.Sorted(maps.Keys(allGuards))}},
	}}
}

// guardrailStatements grant ApplyGuardrail on the tiers' guardrails only:
// the start-up checks call it to prove each guardrail version exists, and
// AWS lists it on the guardrail with InvokeModel as the permissions "to
// allow for model inference and to invoke guardrails"
// (https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions.html).
func (pl *plan) guardrailStatements() []Statement {
	if len(pl.guardrails) == 0 {
		return nil
	}
	return []Statement{{
		Sid: "ApplyTierGuardrails", Effect: "Allow",
		Action:   []string{"bedrock:ApplyGuardrail"},
		Resource: slices.Sorted(maps.Keys(pl.guardrails)),
	}}
}

// numbered names statements base, or base1, base2, ... when there are
// several (Sids must be unique and alphanumeric).
func numbered(base string, st []Statement) []Statement {
	for i := range st {
		st[i].Sid = base
		if len(st) > 1 {
			st[i].Sid = fmt.Sprintf("%s%d", base, i+1)
		}
	}
	return st
}

// Encode returns the policy as JSON indented by two spaces, ending in a
// newline: byte for byte what deploy/iam-task-policy.json holds.
func (p Policy) Encode() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		// Strings, slices and maps of strings always encode.
		panic("iampolicy: encode policy: " + err.Error())
	}
	return b.Bytes()
}

// Size is the policy's size as IAM counts it against its quotas: characters
// other than white space.
func (p Policy) Size() int {
	n := 0
	for _, r := range string(p.Encode()) {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}
