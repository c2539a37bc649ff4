package iampolicy_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tierq/tierq/internal/iampolicy"
	"github.com/tierq/tierq/tiering"
)

const (
	queue   = "arn:aws:sqs:us-east-1:123456789012:jobs"
	guard1  = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1:1"
	guard1A = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1"
)

func tier(name, model, fallback, guardID, guardVersion string) tiering.Tier {
	return tiering.Tier{Name: name, ModelID: model, FallbackModelID: fallback,
		Guardrail: tiering.GuardrailRef{ID: guardID, Version: guardVersion}}
}

func config(tiers ...tiering.Tier) iampolicy.Config {
	return iampolicy.Config{Tiers: &tiering.Config{Tiers: tiers}, QueueARN: queue, ResultsBucket: "results-bucket"}
}

func generate(t *testing.T, c iampolicy.Config) map[string]iampolicy.Statement {
	t.Helper()
	p, err := iampolicy.Generate(c)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	bySid := map[string]iampolicy.Statement{}
	for _, s := range p.Statement {
		if _, dup := bySid[s.Sid]; dup {
			t.Fatalf("two statements named %s", s.Sid)
		}
		bySid[s.Sid] = s
	}
	return bySid
}

// want is the part of a statement a case checks.
type want struct {
	resources []string
	cond      map[string][]string // StringEquals
}

func check(t *testing.T, got map[string]iampolicy.Statement, sid string, w want) {
	t.Helper()
	s, ok := got[sid]
	if !ok {
		t.Errorf("no statement %s; have %v", sid, sids(got))
		return
	}
	if !slices.Equal(s.Resource, w.resources) {
		t.Errorf("%s resources\n got %q\nwant %q", sid, s.Resource, w.resources)
	}
	if g := s.Condition["StringEquals"]; !equalCond(g, w.cond) {
		t.Errorf("%s StringEquals\n got %q\nwant %q", sid, g, w.cond)
	}
}

func equalCond(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func sids(m map[string]iampolicy.Statement) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

func TestModelForms(t *testing.T) {
	t.Parallel()
	const (
		usProfile  = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0"
		glProfile  = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0"
		euProfile  = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0"
		apProfile  = "arn:aws:bedrock:ap-southeast-2:123456789012:inference-profile/apac.amazon.nova-lite-v1:0"
		govQueue   = "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:jobs"
		govProfile = "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0"
	)
	g := []string{guard1}
	cases := []struct {
		name   string
		model  string
		region string // Config.Region; "" takes the queue's
		queue  string // "" is queue
		want   map[string]want
	}{
		{name: "us. profile", model: "us.amazon.nova-micro-v1:0", want: map[string]want{
			"InvokeTierInferenceProfiles": {[]string{usProfile}, map[string][]string{"bedrock:GuardrailIdentifier": g}},
			"InvokeModelsThroughInferenceProfiles": {[]string{"arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0"},
				map[string][]string{"bedrock:GuardrailIdentifier": g, "bedrock:InferenceProfileArn": {usProfile}}},
		}},
		{name: "eu. profile in eu-west-1", model: "eu.anthropic.claude-haiku-4-5-20251001-v1:0", region: "eu-west-1", want: map[string]want{
			"InvokeTierInferenceProfiles": {[]string{euProfile},
				map[string][]string{"bedrock:GuardrailIdentifier": {"arn:aws:bedrock:eu-west-1:123456789012:guardrail/gr1:1"}}},
			"InvokeModelsThroughInferenceProfiles": {[]string{"arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"},
				map[string][]string{"bedrock:GuardrailIdentifier": {"arn:aws:bedrock:eu-west-1:123456789012:guardrail/gr1:1"},
					"bedrock:InferenceProfileArn": {euProfile}}},
		}},
		{name: "apac. profile by ARN", model: apProfile, want: map[string]want{
			"InvokeTierInferenceProfiles": {[]string{apProfile}, map[string][]string{"bedrock:GuardrailIdentifier": g}},
			"InvokeModelsThroughInferenceProfiles": {[]string{"arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0"},
				map[string][]string{"bedrock:GuardrailIdentifier": g, "bedrock:InferenceProfileArn": {apProfile}}},
		}},
		{name: "global. profile", model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0", want: map[string]want{
			"InvokeTierGlobalInferenceProfiles": {[]string{glProfile},
				map[string][]string{"aws:RequestedRegion": {"us-east-1"}, "bedrock:GuardrailIdentifier": g}},
			"InvokeModelsThroughGlobalProfilesInRegion": {[]string{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"},
				map[string][]string{"aws:RequestedRegion": {"us-east-1"}, "bedrock:GuardrailIdentifier": g, "bedrock:InferenceProfileArn": {glProfile}}},
			"InvokeModelsThroughGlobalProfilesAnyRegion": {[]string{"arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"},
				map[string][]string{"aws:RequestedRegion": {"unspecified"}, "bedrock:GuardrailIdentifier": g, "bedrock:InferenceProfileArn": {glProfile}}},
		}},
		{name: "plain foundation model", model: "amazon.titan-text-express-v1", want: map[string]want{
			"InvokeTierFoundationModels": {[]string{"arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1"},
				map[string][]string{"bedrock:GuardrailIdentifier": g}},
		}},
		{name: "foundation model ARN", model: "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-1-8b-instruct-v1:0", want: map[string]want{
			"InvokeTierFoundationModels": {[]string{"arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-1-8b-instruct-v1:0"},
				map[string][]string{"bedrock:GuardrailIdentifier": g}},
		}},
		{name: "us-gov. profile in GovCloud", model: "us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", queue: govQueue, want: map[string]want{
			"InvokeTierInferenceProfiles": {[]string{govProfile},
				map[string][]string{"bedrock:GuardrailIdentifier": {"arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:guardrail/gr1:1"}}},
			"InvokeModelsThroughInferenceProfiles": {[]string{"arn:aws-us-gov:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"},
				map[string][]string{"bedrock:GuardrailIdentifier": {"arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:guardrail/gr1:1"},
					"bedrock:InferenceProfileArn": {govProfile}}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config(tier("only", tc.model, "", "gr1", "1"))
			c.Region = tc.region
			if tc.queue != "" {
				c.QueueARN = tc.queue
			}
			got := generate(t, c)
			for sid, w := range tc.want {
				check(t, got, sid, w)
			}
			for sid, s := range got {
				if _, ok := tc.want[sid]; !ok && slices.Contains(s.Action, "bedrock:InvokeModel") && s.Effect == "Allow" {
					t.Errorf("unexpected InvokeModel statement %s: %q", sid, s.Resource)
				}
			}
		})
	}
}

func TestFallbacksAreGrantedAndDuplicatesCollapse(t *testing.T) {
	t.Parallel()
	got := generate(t, config(
		tier("economy", "us.amazon.nova-micro-v1:0", "", "gr1", "1"),
		tier("standard", "us.amazon.nova-micro-v1:0", "global.amazon.nova-micro-v1:0", "gr1", "1"),
		tier("premium", "amazon.nova-pro-v1:0", "us.amazon.nova-micro-v1:0", "gr1", "1"),
	))
	g := map[string][]string{"bedrock:GuardrailIdentifier": {guard1}}
	check(t, got, "InvokeTierInferenceProfiles", want{
		[]string{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0"}, g})
	check(t, got, "InvokeTierFoundationModels", want{
		[]string{"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"}, g})
	if s := got["InvokeTierGlobalInferenceProfiles"]; len(s.Resource) != 1 ||
		s.Resource[0] != "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.amazon.nova-micro-v1:0" {
		t.Errorf("fallback global profile: got %q", s.Resource)
	}
}

func TestGuardrailConditions(t *testing.T) {
	t.Parallel()
	const g2ARN = "arn:aws:bedrock:us-west-2:210987654321:guardrail/gr2"
	got := generate(t, config(
		tier("economy", "amazon.nova-micro-v1:0", "", "gr1", "1"),
		tier("premium", "amazon.nova-pro-v1:0", "", g2ARN, "7"),
		// Same model as economy, another guardrail: either may be used.
		tier("extract", "amazon.nova-micro-v1:0", "", g2ARN, "7"),
	))
	check(t, got, "InvokeTierFoundationModels1", want{
		[]string{"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"},
		map[string][]string{"bedrock:GuardrailIdentifier": {guard1, g2ARN + ":7"}}})
	check(t, got, "InvokeTierFoundationModels2", want{
		[]string{"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"},
		map[string][]string{"bedrock:GuardrailIdentifier": {g2ARN + ":7"}}})
	if r := got["ApplyTierGuardrails"].Resource; !slices.Equal(r, []string{guard1A, g2ARN}) {
		t.Errorf("ApplyGuardrail on %q, want exactly the two guardrails (unversioned)", r)
	}
	deny := got["DenyInvokeWithoutTierGuardrail"]
	if deny.Effect != "Deny" || !slices.Equal(deny.Resource, []string{"*"}) ||
		!slices.Equal(deny.Condition["StringNotEquals"]["bedrock:GuardrailIdentifier"], []string{guard1, g2ARN + ":7"}) {
		t.Errorf("deny without guardrail: got %+v", deny)
	}
}

func TestMissingGuardrail(t *testing.T) {
	t.Parallel()
	c := config(
		tier("economy", "amazon.nova-micro-v1:0", "", "gr1", "1"),
		tier("open", "amazon.nova-pro-v1:0", "", "", ""),
	)
	_, err := iampolicy.Generate(c)
	if err == nil || !strings.Contains(err.Error(), "tiers[1] (open)") || !strings.Contains(err.Error(), "--allow-unguarded") {
		t.Fatalf("err = %v; want the tier named and --allow-unguarded offered", err)
	}

	c.AllowUnguarded = true
	got := generate(t, c)
	check(t, got, "InvokeTierFoundationModels1", want{
		[]string{"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"}, nil})
	check(t, got, "InvokeTierFoundationModels2", want{
		[]string{"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"},
		map[string][]string{"bedrock:GuardrailIdentifier": {guard1}}})
	if r := got["DenyInvokeWithoutTierGuardrail"].Resource; !slices.Equal(r, []string{"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"}) {
		t.Errorf("with an unguarded tier the deny must cover only the guarded model, got %q", r)
	}

	c = config(tier("open", "amazon.nova-pro-v1:0", "", "", ""))
	c.AllowUnguarded = true
	got = generate(t, c)
	for _, sid := range []string{"DenyInvokeWithoutTierGuardrail", "ApplyTierGuardrails"} {
		if _, ok := got[sid]; ok {
			t.Errorf("no tier has a guardrail, yet the policy has %s", sid)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func() iampolicy.Config { return config(tier("economy", "us.amazon.nova-micro-v1:0", "", "gr1", "1")) }
	cases := []struct {
		name   string
		change func(*iampolicy.Config)
		want   []string // substrings of the error
	}{
		{"no queue", func(c *iampolicy.Config) { c.QueueARN = "" }, []string{"queue ARN: required", "dead-letter queue ARN: required"}},
		{"queue URL given as ARN", func(c *iampolicy.Config) {
			c.QueueARN = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
		}, []string{"queue ARN", "is not an ARN"}},
		{"queue ARN of another service", func(c *iampolicy.Config) { c.QueueARN = "arn:aws:sns:us-east-1:123456789012:jobs" }, []string{"not sqs"}},
		{"wildcard queue", func(c *iampolicy.Config) { c.QueueARN = "arn:aws:sqs:us-east-1:123456789012:*" }, []string{"wildcards"}},
		{"bad account", func(c *iampolicy.Config) { c.QueueARN = "arn:aws:sqs:us-east-1:1234:jobs" }, []string{"account \"1234\""}},
		{"dead-letter queue is the job queue", func(c *iampolicy.Config) { c.DeadLetterQueueARN = queue }, []string{"is the job queue"}},
		{"empty results bucket", func(c *iampolicy.Config) { c.ResultsBucket = "" }, []string{"results bucket: required"}},
		{"results bucket with a key", func(c *iampolicy.Config) { c.ResultsBucket = "bucket/key" }, []string{"is not a bucket name"}},
		{"wildcard results bucket", func(c *iampolicy.Config) { c.ResultsBucket = "bucket*" }, []string{"is not a bucket name"}},
		{"absolute results prefix", func(c *iampolicy.Config) { c.ResultsPrefix = "/results/" }, []string{"must not start with /"}},
		{"wildcard results prefix", func(c *iampolicy.Config) { c.ResultsPrefix = "res*/" }, []string{"must not contain *"}},
		{"policy variable in input prefix", func(c *iampolicy.Config) { c.InputBuckets = []string{"inputs/${aws:username}/"} }, []string{"input buckets[0]: prefix"}},
		{"short input bucket", func(c *iampolicy.Config) { c.InputBuckets = []string{"ok-bucket", "a"} }, []string{"input buckets[1]"}},
		{"bad region", func(c *iampolicy.Config) { c.Region = "useast1" }, []string{"region: \"useast1\""}},
		{"no tiers", func(c *iampolicy.Config) { c.Tiers = nil }, []string{"tiers: at least one tier"}},
		{"DRAFT guardrail", func(c *iampolicy.Config) { c.Tiers.Tiers[0].Guardrail.Version = "DRAFT" }, []string{"tiers[0] (economy).guardrail.version: DRAFT"}},
		{"guardrail version not a number", func(c *iampolicy.Config) { c.Tiers.Tiers[0].Guardrail.Version = "v1" }, []string{"\"v1\" is not a guardrail version number"}},
		{"guardrail ID with a version in it", func(c *iampolicy.Config) {
			c.Tiers.Tiers[0].Guardrail.ID = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1:1"
		}, []string{"is not a guardrail ARN"}},
		{"application inference profile", func(c *iampolicy.Config) {
			c.Tiers.Tiers[0].FallbackModelID = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
		}, []string{"tiers[0] (economy).fallback_model_id", "application-inference-profile ARN"}},
		{"model ARN in another partition", func(c *iampolicy.Config) {
			c.Tiers.Tiers[0].ModelID = "arn:aws-cn:bedrock:cn-north-1::foundation-model/amazon.nova-micro-v1:0"
		}, []string{"tiers[0] (economy).model_id", "arn:aws:bedrock"}},
		{"wildcard model", func(c *iampolicy.Config) { c.Tiers.Tiers[0].ModelID = "anthropic.*" }, []string{"not a model or inference profile ID"}},
		{"policy variable in a model", func(c *iampolicy.Config) { c.Tiers.Tiers[0].ModelID = "amazon.${aws:username}" }, []string{"not a model or inference profile ID"}},
		{"policy variable in the queue", func(c *iampolicy.Config) { c.QueueARN = "arn:aws:sqs:us-east-1:123456789012:${aws:username}" }, []string{"policy variables"}},
		{"every problem at once", func(c *iampolicy.Config) {
			c.ResultsBucket, c.ResultsPrefix, c.Tiers.Tiers[0].Guardrail = "", "/x", tiering.GuardrailRef{}
		}, []string{"results bucket: required", "must not start with /", "no guardrail"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := ok()
			tc.change(&c)
			_, err := iampolicy.Generate(c)
			if err == nil {
				t.Fatalf("Generate accepted it; want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
	if _, err := iampolicy.Generate(ok()); err != nil {
		t.Errorf("the base config is valid, got %v", err)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cases := []struct{ queue, dlq string }{
		{"arn:aws:sqs:eu-west-1:123456789012:jobs", "arn:aws:sqs:eu-west-1:123456789012:jobs-dlq"},
		{"arn:aws:sqs:eu-west-1:123456789012:jobs.fifo", "arn:aws:sqs:eu-west-1:123456789012:jobs-dlq.fifo"},
		{"arn:aws:sqs:REGION:ACCOUNT_ID:jobs", "arn:aws:sqs:REGION:ACCOUNT_ID:jobs-dlq"},
	}
	for _, tc := range cases {
		c := iampolicy.Config{QueueARN: tc.queue}
		c.ApplyDefaults()
		q := strings.Split(tc.queue, ":")
		if c.DeadLetterQueueARN != tc.dlq || c.Region != q[3] || c.AccountID != q[4] || c.ResultsPrefix != "results/" {
			t.Errorf("ApplyDefaults with queue %s: got dlq %s, region %s, account %s, prefix %s; want dlq %s and the queue's Region and account",
				tc.queue, c.DeadLetterQueueARN, c.Region, c.AccountID, c.ResultsPrefix, tc.dlq)
		}
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	c := config(tier("economy", "amazon.nova-micro-v1:0", "", "gr1", "1"))
	c.ResultsPrefix = "out/tierq/"
	c.InputBuckets = []string{"docs/in/", "docs/more/", "whole", "whole/sub/", "other.bucket"}
	c.ListInputBuckets = true
	got := generate(t, c)
	if r := got["ReadAndWriteResults"].Resource; !slices.Equal(r, []string{"arn:aws:s3:::results-bucket/out/tierq/*"}) {
		t.Errorf("results grant on %q", r)
	}
	list := got["TellMissingResultsFromForbidden"]
	if !slices.Equal(list.Resource, []string{"arn:aws:s3:::results-bucket"}) ||
		!slices.Equal(list.Condition["StringLike"]["s3:prefix"], []string{"out/tierq/*"}) {
		t.Errorf("results ListBucket: got %+v; want the bucket under s3:prefix out/tierq/*", list)
	}
	if r := got["ReadInputDocuments"].Resource; !slices.Equal(r, []string{"arn:aws:s3:::docs/in/*", "arn:aws:s3:::docs/more/*",
		"arn:aws:s3:::other.bucket/*", "arn:aws:s3:::whole/*"}) {
		t.Errorf("input grant on %q; want prefixes kept and a whole bucket subsuming its prefix", r)
	}
	whole, docs := got["TellMissingInputsFromForbidden1"], got["TellMissingInputsFromForbidden2"]
	if !slices.Equal(whole.Resource, []string{"arn:aws:s3:::other.bucket", "arn:aws:s3:::whole"}) || whole.Condition != nil {
		t.Errorf("whole input buckets' ListBucket: got %+v", whole)
	}
	if !slices.Equal(docs.Resource, []string{"arn:aws:s3:::docs"}) ||
		!slices.Equal(docs.Condition["StringLike"]["s3:prefix"], []string{"in/*", "more/*"}) {
		t.Errorf("prefixed input bucket's ListBucket: got %+v", docs)
	}

	c.ListInputBuckets = false
	got = generate(t, c)
	for sid, s := range got {
		if strings.HasPrefix(sid, "TellMissingInputs") {
			t.Errorf("ListInputBuckets off, yet %s lists %q", sid, s.Resource)
		}
	}
}

func TestOutputIsStableAndWellFormed(t *testing.T) {
	t.Parallel()
	c := iampolicy.Config{Tiers: tiering.Default(), QueueARN: queue, ResultsBucket: "results-bucket",
		InputBuckets: []string{"in-b", "in-a/x/"}, ListInputBuckets: true}
	c.Tiers.Tiers[0].FallbackModelID = "global.amazon.nova-micro-v1:0"
	first, err := iampolicy.Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	enc := first.Encode()
	for range 20 { // map order is random per run: any dependence on it shows
		p, _ := iampolicy.Generate(c)
		if !bytes.Equal(p.Encode(), enc) {
			t.Fatal("two runs gave different policies")
		}
	}
	if !bytes.HasSuffix(enc, []byte("}\n")) || !bytes.Contains(enc, []byte("\n  \"Statement\": [\n    {")) {
		t.Errorf("want 2-space indentation and a trailing newline:\n%s", enc)
	}
	var round iampolicy.Policy
	if err := json.Unmarshal(enc, &round); err != nil || round.Version != "2012-10-17" {
		t.Fatalf("not a policy document: %v", err)
	}
	alnum := regexp.MustCompile(`^[A-Za-z0-9]+$`)
	for _, s := range first.Statement {
		if !alnum.MatchString(s.Sid) {
			t.Errorf("Sid %q: IAM takes only letters and digits", s.Sid)
		}
		if s.Effect == "Allow" && slices.Contains(s.Resource, "*") {
			t.Errorf("%s allows %q on every resource", s.Sid, s.Action)
		}
		if !slices.IsSorted(s.Action) || !slices.IsSorted(s.Resource) {
			t.Errorf("%s: actions and resources must be sorted", s.Sid)
		}
	}
	if n := first.Size(); n > iampolicy.ManagedPolicyMaxChars {
		t.Errorf("the default tiers' policy has %d characters, more than a managed policy's %d", n, iampolicy.ManagedPolicyMaxChars)
	}
}
