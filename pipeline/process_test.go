package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// Unit tests of Process on hand-written fakes; the integration tests run the
// same paths on kumo and the Bedrock simulator.

func msg(t *testing.T, j jobv1.Job) worker.Message {
	t.Helper()
	if j.Version == "" {
		j.Version = jobv1.JobVersion
	}
	if j.JobID == "" {
		j.JobID = "j1"
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return worker.Message{ID: "m1", Body: b, ReceiveCount: 3, SentAt: fakeStart.Add(-2 * time.Second)}
}

func (u *unit) result(t *testing.T, jobID string) jobv1.Result {
	t.Helper()
	b := u.store.object("results", jobv1.ResultKey(DefaultResultsPrefix, jobID))
	if b == nil {
		t.Fatalf("no result for %s", jobID)
	}
	var r jobv1.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (u *unit) process(t *testing.T, m worker.Message) {
	t.Helper()
	if err := u.p.Process(context.Background(), m); err != nil {
		t.Fatalf("Process: %v", err)
	}
}

const shortDoc = "A short document about a late delivery."

func TestCostSumsAcrossEscalation(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{
		{out: answer("cut off", types.StopReasonMaxTokens, 100, 4096, unitsTrace(1, 2, 2))},
		{out: answer("a complete summary", types.StopReasonEndTurn, 120, 300, unitsTrace(1, 2, 3))},
	}, nil)
	u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	r := u.result(t, "j1")
	tiers := tiering.Default()
	eco, _ := tiers.Tier("economy")
	std, _ := tiers.Tier("standard")
	u1 := tiering.Usage{InputTokens: 100, OutputTokens: 4096, GuardrailUnits: tiering.GuardrailUnits{Content: 1, Topics: 2, SensitiveInfo: 2}}
	u2 := tiering.Usage{InputTokens: 120, OutputTokens: 300, GuardrailUnits: tiering.GuardrailUnits{Content: 1, Topics: 2, SensitiveInfo: 3}}
	if want := u1.Add(u2); r.Usage != want {
		t.Errorf("usage %+v, want %+v", r.Usage, want)
	}
	if want := eco.Prices.Cost(u1).Add(std.Prices.Cost(u2)); !testenv.SameCost(r.Cost, want) {
		t.Errorf("cost %+v, want economy's %+v plus standard's %+v", r.Cost, eco.Prices.Cost(u1), std.Prices.Cost(u2))
	}
	if r.Tier != "standard" || r.ModelID != std.ModelID || r.Output.Text != "a complete summary" || r.StopReason != "end_turn" {
		t.Errorf("final tier %s model %s output %q stop %s, want the last call's", r.Tier, r.ModelID, r.Output.Text, r.StopReason)
	}
	if r.TierRule != tiering.RuleSize || !strings.Contains(r.TierReason, "economy") {
		t.Errorf("rule %q reason %q, want the starting tier's classification", r.TierRule, r.TierReason)
	}
	if len(r.Escalations) != 1 || r.Escalations[0] != (jobv1.Escalation{FromTier: "economy", ToTier: "standard", Reason: "answer stopped at max_tokens on tier economy; retrying on standard"}) {
		t.Errorf("escalations = %+v", r.Escalations)
	}
	if r.Guardrail.TextUnits != u1.GuardrailUnits.Add(u2.GuardrailUnits) {
		t.Errorf("guardrail units %+v, want both calls'", r.Guardrail.TextUnits)
	}
	// Each call carried its tier's maxTokens and told the SDK not to retry.
	if len(u.conv.calls) != 2 || aws.ToInt32(u.conv.calls[0].InferenceConfig.MaxTokens) != 4096 || aws.ToInt32(u.conv.calls[1].InferenceConfig.MaxTokens) != 8192 {
		t.Errorf("calls = %d with maxTokens per tier wrong", len(u.conv.calls))
	}
	for i, a := range u.conv.attempts {
		if a != 1 {
			t.Errorf("call %d: SDK RetryMaxAttempts = %d, want 1", i, a)
		}
	}
}

func TestEscalationEdgeCases(t *testing.T) {
	t.Parallel()
	cutOff := reply{out: answer("cut off", types.StopReasonMaxTokens, 50, 100, unitsTrace(1, 1, 1))}
	ssnBlocked := &types.ConverseTrace{Guardrail: &types.GuardrailTraceAssessment{
		OutputAssessments: map[string][]types.GuardrailAssessment{"tierq-default": {pii("US_SOCIAL_SECURITY_NUMBER", types.GuardrailSensitiveInformationPolicyActionBlocked)}},
	}}
	tests := []struct {
		name        string
		job         jobv1.Job
		tiers       func(*tiering.Config)
		replies     []reply
		status      string
		escalations int
		calls       int
		check       func(t *testing.T, r jobv1.Result)
	}{
		{"the job's own max_output_tokens caps the next tier too",
			jobv1.Job{Task: "summarize", Text: shortDoc, MaxOutputTokens: 100}, nil,
			[]reply{cutOff}, jobv1.StatusSucceeded, 0, 1, func(t *testing.T, r jobv1.Result) {
				if r.StopReason != "max_tokens" || r.Tier != "economy" {
					t.Errorf("stop %s tier %s, want the economy answer as it is", r.StopReason, r.Tier)
				}
			}},
		{"the document does not fit the next tier",
			jobv1.Job{Task: "summarize", Text: shortDoc}, func(c *tiering.Config) { c.Tiers[1].ContextWindow = c.Tiers[1].MaxOutputTokens + 1 },
			[]reply{cutOff}, jobv1.StatusSucceeded, 0, 1, nil},
		{"escalation disabled",
			jobv1.Job{Task: "summarize", Text: shortDoc}, func(c *tiering.Config) { c.Escalation.Enabled = false },
			[]reply{cutOff}, jobv1.StatusSucceeded, 0, 1, nil},
		{"extract answer that is not JSON escalates",
			jobv1.Job{Task: "extract", Text: shortDoc, Fields: []string{"customer"}}, nil,
			[]reply{
				{out: answer("The customer is Acme.", types.StopReasonEndTurn, 50, 10, nil)},
				{out: answer("```json\n{\"customer\": \"Acme\"}\n```", types.StopReasonEndTurn, 60, 12, nil)},
			}, jobv1.StatusSucceeded, 1, 2, func(t *testing.T, r jobv1.Result) {
				if string(r.Output.JSON) != `{"customer":"Acme"}` {
					t.Errorf("output.json = %s, want the fenced object", r.Output.JSON)
				}
			}},
		{"extract answer that stays invalid keeps text only",
			jobv1.Job{Task: "extract", Text: shortDoc, Fields: []string{"customer"}}, nil,
			[]reply{
				{out: answer("no JSON here", types.StopReasonEndTurn, 50, 10, nil)},
				{out: answer("still none", types.StopReasonEndTurn, 60, 12, nil)},
			}, jobv1.StatusSucceeded, 1, 2, func(t *testing.T, r jobv1.Result) {
				if r.Output.JSON != nil || r.Output.Text != "still none" {
					t.Errorf("output = %+v, want the last text and no JSON", r.Output)
				}
			}},
		{"the escalated call is blocked",
			jobv1.Job{Task: "summarize", Text: shortDoc}, nil,
			[]reply{cutOff, {out: answer("Sorry, blocked.", types.StopReasonGuardrailIntervened, 60, 80, ssnBlocked)}},
			jobv1.StatusBlocked, 1, 2, func(t *testing.T, r jobv1.Result) {
				if r.Guardrail.Action != jobv1.GuardrailBlocked || r.Usage.InputTokens != 110 || r.Error != nil {
					t.Errorf("guardrail %+v usage %+v error %+v, want blocked with both calls' usage", r.Guardrail, r.Usage, r.Error)
				}
			}},
		{"extract answer that is a JSON array escalates",
			jobv1.Job{Task: "extract", Text: shortDoc, Fields: []string{"customer"}}, nil,
			[]reply{
				{out: answer(`["Acme"]`, types.StopReasonEndTurn, 50, 10, nil)},
				{out: answer(`{"customer": "Acme"}`, types.StopReasonEndTurn, 60, 12, nil)},
			}, jobv1.StatusSucceeded, 1, 2, func(t *testing.T, r jobv1.Result) {
				if string(r.Output.JSON) != `{"customer":"Acme"}` {
					t.Errorf("output.json = %s, want the standard tier's object", r.Output.JSON)
				}
			}},
		{"extract answer that is a JSON string is not stored as JSON",
			jobv1.Job{Task: "extract", Text: shortDoc, Fields: []string{"customer"}}, func(c *tiering.Config) { c.Escalation.Enabled = false },
			[]reply{{out: answer(`"n/a"`, types.StopReasonEndTurn, 50, 3, nil)}},
			jobv1.StatusSucceeded, 0, 1, func(t *testing.T, r jobv1.Result) {
				if r.Output.JSON != nil || r.Output.Text != `"n/a"` {
					t.Errorf("output = %+v, want the text and no JSON", r.Output)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, tt.replies, func(c *Config) {
				if tt.tiers != nil {
					tt.tiers(c.Tiers)
				}
			})
			u.process(t, msg(t, tt.job))
			r := u.result(t, "j1")
			if r.Status != tt.status || len(r.Escalations) != tt.escalations || len(u.conv.calls) != tt.calls || r.Attempts != tt.calls {
				t.Fatalf("status %s escalations %d calls %d attempts %d; want %s, %d, %d calls and attempts",
					r.Status, len(r.Escalations), len(u.conv.calls), r.Attempts, tt.status, tt.escalations, tt.calls)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestResultRecordsTheJobAndTheWorker(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{out: answer("billing", types.StopReasonEndTurn, 40, 1, nil)}}, nil)
	m := msg(t, jobv1.Job{JobID: "ticket-7", Task: "classify", Text: shortDoc, Labels: []string{"billing", "outage"},
		Metadata: map[string]string{"tenant": "acme", "ticket": "7"}})
	u.process(t, m)
	r := u.result(t, "ticket-7")
	// The clock ticks 10 ms per reading: start, the claim's lease, call
	// begin, call end, finish.
	want := jobv1.Timings{
		EnqueuedAt: fakeStart.Add(-2 * time.Second), StartedAt: fakeStart.Add(10 * time.Millisecond),
		FinishedAt: fakeStart.Add(50 * time.Millisecond), QueueMs: 2010, ModelMs: 10, TotalMs: 40,
	}
	if r.Timings != want {
		t.Errorf("timings\n got %+v\nwant %+v", r.Timings, want)
	}
	if r.Worker != (jobv1.WorkerInfo{ID: "w1", Version: "v1", ReceiveCount: 3}) {
		t.Errorf("worker = %+v", r.Worker)
	}
	if r.Version != jobv1.ResultVersion || r.Task != "classify" || r.Metadata["ticket"] != "7" || r.Status != jobv1.StatusSucceeded {
		t.Errorf("result = %+v", r)
	}
	line := strings.TrimSpace(u.metrics.String())
	for _, s := range []string{`"JobId":"ticket-7"`, `"Tenant":"acme"`, `"Status":"succeeded"`, `"Timestamp":1795521600050`} {
		if !strings.Contains(line, s) {
			t.Errorf("metrics line %s lacks %s", line, s)
		}
	}
	// Logs carry identifiers and outcomes, never the document or the answer.
	logs := u.logs.String()
	for _, s := range []string{`"job_id":"ticket-7"`, `"status":"succeeded"`, `"model_id":"us.amazon.nova-micro-v1:0"`, `"attempts":1`} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack %s:\n%s", s, logs)
		}
	}
	if strings.Contains(logs, "late delivery") {
		t.Error("logs carry document text")
	}
}

func TestUnknownMessageTimeIsNotInvented(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{out: answer("ok", types.StopReasonEndTurn, 4, 1, nil)}}, nil)
	m := msg(t, jobv1.Job{Task: "summarize", Text: shortDoc})
	m.SentAt = time.Time{}
	u.process(t, m)
	if r := u.result(t, "j1"); !r.Timings.EnqueuedAt.IsZero() || r.Timings.QueueMs != 0 {
		t.Errorf("timings = %+v, want no queue time without SentAt", r.Timings)
	}
}

func TestRetriesThenRelease(t *testing.T) {
	t.Parallel()
	unavailable := reply{err: sdkErr(503, &types.ServiceUnavailableException{Message: aws.String("try later")})}
	u := newUnit(t, []reply{unavailable, unavailable, unavailable}, func(c *Config) {
		c.Retry = RetryConfig{MaxAttempts: 3}
	})
	err := u.p.Process(context.Background(), msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	var su *types.ServiceUnavailableException
	if retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, ErrRetriesExhausted) || !errors.As(err, &su) {
		t.Fatalf("Process = %v, want a release wrapping ErrRetriesExhausted and the 503", err)
	}
	if u.store.puts != 0 || u.metrics.Len() != 0 {
		t.Errorf("%d writes, metrics %q: a released job writes nothing", u.store.puts, u.metrics)
	}
	if st := u.p.Stats(); st.Attempts != 3 || st.Released != 1 {
		t.Errorf("stats = %+v, want 3 attempts, 1 released", st)
	}
}

// A throttle is snoozed, not failed: it spends none of MaxAttempts.
func TestThrottlesAreSnoozedNotCounted(t *testing.T) {
	t.Parallel()
	throttle := reply{err: sdkErr(429, &types.ThrottlingException{Message: aws.String("slow down")})}
	ok := reply{out: answer("a summary", types.StopReasonEndTurn, 40, 5, nil)}
	u := newUnit(t, []reply{throttle, throttle, throttle, throttle, ok}, func(c *Config) {
		c.Retry = RetryConfig{MaxAttempts: 2}
	})
	u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	r := u.result(t, "j1")
	if r.Status != jobv1.StatusSucceeded || r.Attempts != 5 {
		t.Errorf("status %s after %d calls, want succeeded after 5 (4 throttles do not spend the 2 attempts)", r.Status, r.Attempts)
	}
	if st := u.p.Stats(); st.Throttles != 4 || st.Released != 0 {
		t.Errorf("stats = %+v, want 4 throttles and nothing released", st)
	}
}

// Past MaxSnooze a throttled job is released, so its slot serves others.
func TestThrottledBeyondSnoozeIsReleased(t *testing.T) {
	t.Parallel()
	throttle := reply{err: sdkErr(429, &types.ThrottlingException{Message: aws.String("slow down")})}
	replies := make([]reply, 50)
	for i := range replies {
		replies[i] = throttle
	}
	// The unit clock ticks 10ms per reading: a 100ms budget lasts a few throttles.
	u := newUnit(t, replies, func(c *Config) {
		c.Retry = RetryConfig{MaxAttempts: 2, MaxSnooze: 100 * time.Millisecond}
	})
	err := u.p.Process(context.Background(), msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	var thr *types.ThrottlingException
	var ex *exhaustedError
	if retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, ErrRetriesExhausted) || !errors.As(err, &thr) ||
		!errors.As(err, &ex) || ex.snoozed == 0 {
		t.Fatalf("Process = %v, want a release after snoozing out the throttles", err)
	}
	if st := u.p.Stats(); st.Throttles < 3 || st.Throttles >= 50 || st.Released != 1 || u.store.puts != 0 {
		t.Errorf("stats = %+v, %d writes: want a few throttles within the budget, 1 released, nothing written", st, u.store.puts)
	}
}

func TestTransientThenSuccessCountsAttempts(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{
		{err: sdkErr(503, &types.ServiceUnavailableException{})},
		{err: sdkErr(429, &types.ThrottlingException{})},
		{out: answer("fine", types.StopReasonEndTurn, 10, 2, nil)},
	}, nil)
	u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	r := u.result(t, "j1")
	if r.Status != jobv1.StatusSucceeded || r.Attempts != 3 {
		t.Errorf("status %s attempts %d, want succeeded after 3", r.Status, r.Attempts)
	}
	if !strings.Contains(u.metrics.String(), `"Throttles":1,"Attempts":3`) {
		t.Errorf("metrics %s, want 1 throttle and 3 attempts", u.metrics)
	}
}

func TestResultWriteFailureReleases(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{out: answer("ok", types.StopReasonEndTurn, 4, 1, nil)}}, nil)
	u.store.putErr = sdkErr(500, &smithy.GenericAPIError{Code: "InternalError"})
	err := u.p.Process(context.Background(), msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	if retryDelay(err) != worker.DefaultReleaseDelay {
		t.Fatalf("Process = %v, want a release after %s", err, worker.DefaultReleaseDelay)
	}
	// The answer was paid for and no result says so: one metrics line,
	// marked released, records the call.
	lines := strings.Split(strings.TrimSpace(u.metrics.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"Kind":"call"`) || !strings.Contains(lines[1], `"Kind":"job"`) {
		t.Fatalf("metrics %q, want a call line and a job line", lines)
	}
	for _, line := range lines {
		if !strings.Contains(line, `"Status":"released"`) || strings.Contains(line, `"CostUSD":0,`) {
			t.Errorf("metrics line %q, want it marked released with the paid call's cost", line)
		}
	}
	if !strings.Contains(lines[1], `"Attempts":1`) {
		t.Errorf("job line %q, want 1 attempt", lines[1])
	}
}

func TestDefaultBackoffIsCappedExponentialWithJitter(t *testing.T) {
	t.Parallel()
	p, err := New(Config{ResultsBucket: "r", Tiers: tiering.Default(), Retry: RetryConfig{Base: 100 * time.Millisecond, Cap: time.Second}},
		Deps{Converser: &fakeConverser{}, Store: newFakeStore()})
	if err != nil {
		t.Fatal(err)
	}
	b := p.backoff()
	for i := range 10 {
		d, stop := b.Next()
		if limit := min(100*time.Millisecond<<i, time.Second); stop || d < 0 || d >= limit {
			t.Errorf("wait %d = %s (stop %v), want within [0, %s)", i, d, stop, limit)
		}
	}
}

// A failed escalation keeps the answer already paid for: releasing the job
// would pay for the first tier again, and a failed result would throw the
// answer away.
func TestFailedEscalationKeepsThePreviousAnswer(t *testing.T) {
	t.Parallel()
	cutOff := reply{out: answer("cut off", types.StopReasonMaxTokens, 50, 100, unitsTrace(1, 1, 1))}
	unavailable := reply{err: sdkErr(503, &types.ServiceUnavailableException{Message: aws.String("busy")})}
	tests := []struct {
		name    string
		job     jobv1.Job
		replies []reply
		text    string // the kept answer
		stop    string
		failed  string // in Escalations[0].Failed
	}{
		{"transient after its retries",
			jobv1.Job{Task: "summarize", Text: shortDoc},
			[]reply{cutOff, unavailable, unavailable},
			"cut off", "max_tokens", "ServiceUnavailableException after 2 attempts"},
		{"permanent: no model access",
			jobv1.Job{Task: "summarize", Text: shortDoc},
			[]reply{cutOff, {err: sdkErr(403, &types.AccessDeniedException{Message: aws.String("no access")})}},
			"cut off", "max_tokens", "access_denied: enable model access for us.anthropic.claude-haiku"},
		{"permanent: model not found",
			jobv1.Job{Task: "summarize", Text: shortDoc},
			[]reply{cutOff, {err: sdkErr(404, &types.ResourceNotFoundException{Message: aws.String("Model not found")})}},
			"cut off", "max_tokens", "resource_not_found: Bedrock found no such resource"},
		{"credentials rejected",
			jobv1.Job{Task: "summarize", Text: shortDoc},
			[]reply{cutOff, {err: sdkErr(403, &smithy.GenericAPIError{Code: "ExpiredTokenException"})}, {err: sdkErr(403, &smithy.GenericAPIError{Code: "ExpiredTokenException"})}},
			"cut off", "max_tokens", "ExpiredTokenException after 2 attempts"},
		{"extract: the invalid answer is kept as text",
			jobv1.Job{Task: "extract", Text: shortDoc, Fields: []string{"customer"}},
			[]reply{{out: answer("The customer is Acme.", types.StopReasonEndTurn, 50, 100, nil)}, unavailable, unavailable},
			"The customer is Acme.", "end_turn", "ServiceUnavailableException after 2 attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, tt.replies, func(c *Config) { c.Retry.MaxAttempts = 2 })
			u.process(t, msg(t, tt.job))
			r := u.result(t, "j1")
			eco, _ := tiering.Default().Tier("economy")
			if r.Status != jobv1.StatusSucceeded || r.Error != nil || r.Tier != "economy" || r.ModelID != eco.ModelID ||
				r.Output.Text != tt.text || r.StopReason != tt.stop {
				t.Fatalf("status %s error %+v tier %s model %s output %q stop %s; want succeeded with economy's answer %q, %s",
					r.Status, r.Error, r.Tier, r.ModelID, r.Output.Text, r.StopReason, tt.text, tt.stop)
			}
			if r.Output.JSON != nil {
				t.Errorf("output.json = %s, want none for an answer that is not an object", r.Output.JSON)
			}
			if len(r.Escalations) != 1 || r.Escalations[0].ToTier != "standard" || !strings.HasPrefix(r.Escalations[0].Failed, tt.failed) {
				t.Errorf("escalations = %+v, want one to standard that failed with %q", r.Escalations, tt.failed)
			}
			// Every call is counted; only the answered one has usage to bill.
			if r.Attempts != len(tt.replies) || len(u.conv.calls) != len(tt.replies) {
				t.Errorf("attempts %d, calls %d; want %d", r.Attempts, len(u.conv.calls), len(tt.replies))
			}
			first := callUsage(tt.replies[0].out, guardrailOutcome(eco.Guardrail, tt.replies[0].out.StopReason, tt.replies[0].out.Trace))
			if r.Usage != first || !testenv.SameCost(r.Cost, eco.Prices.Cost(first)) {
				t.Errorf("usage %+v cost %+v, want economy's call: %+v", r.Usage, r.Cost, first)
			}
			if st := u.p.Stats(); st.Succeeded != 1 || st.Released != 0 {
				t.Errorf("stats = %+v, want 1 succeeded and nothing released", st)
			}
			if !strings.Contains(u.logs.String(), "escalation failed; keeping the answer from the previous tier") {
				t.Errorf("logs do not report the failed escalation:\n%s", u.logs)
			}
		})
	}
}

// A shutdown during an escalation releases the job whole: nothing failed.
func TestShutdownDuringEscalationReleases(t *testing.T) {
	t.Parallel()
	stalling := make(chan struct{})
	u := newUnit(t, []reply{{out: answer("cut off", types.StopReasonMaxTokens, 50, 100, nil)}, {stall: true}}, nil)
	u.conv.stalling = stalling
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stalling; cancel() }()
	err := u.p.Process(ctx, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	if retryDelay(err) != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Process = %v, want an immediate release wrapping context.Canceled", err)
	}
	if u.store.puts != 0 {
		t.Errorf("%d result writes, want none", u.store.puts)
	}
	// The economy answer was paid for; the next delivery starts again, so a
	// metrics line is the only record of it.
	if line := u.metrics.String(); !strings.Contains(line, `"Status":"released"`) || !strings.Contains(line, `"OutputTokens":100`) {
		t.Errorf("metrics %q, want a released line with the first tier's paid answer", line)
	}
}

func TestCredentialErrorsReleaseAndLogTheCode(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"ExpiredTokenException", "UnrecognizedClientException", "InvalidSignatureException",
		"InvalidClientTokenId", "RequestExpired", "IncompleteSignature", "SignatureDoesNotMatch", "ExpiredToken"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			denied := reply{err: sdkErr(403, &smithy.GenericAPIError{Code: code, Message: "from AWS"})}
			u := newUnit(t, []reply{denied, denied}, func(c *Config) {
				c.Retry = RetryConfig{MaxAttempts: 2}
			})
			err := u.p.Process(context.Background(), msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
			if retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, ErrRetriesExhausted) {
				t.Fatalf("Process = %v, want a release: a job ID gets one result ever, so this must not fail it", err)
			}
			if u.store.puts != 0 {
				t.Errorf("%d result writes, want none", u.store.puts)
			}
			var logged int
			for _, line := range strings.Split(strings.TrimSpace(u.logs.String()), "\n") {
				var l map[string]any
				if json.Unmarshal([]byte(line), &l) != nil || l["level"] != "ERROR" {
					continue
				}
				logged++
				if l["error_code"] != code || !strings.Contains(l["msg"].(string), "credentials") {
					t.Errorf("ERROR line %s, want error_code %s and a hint about credentials", line, code)
				}
				if strings.Contains(line, "from AWS") {
					t.Errorf("ERROR line %s carries AWS's message; the code is enough", line)
				}
			}
			if logged != 2 {
				t.Errorf("%d ERROR lines, want one per attempt:\n%s", logged, u.logs)
			}
		})
	}
}

func TestStalledCallTimesOutAndIsRetried(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{stall: true}, {out: answer("fine", types.StopReasonEndTurn, 10, 2, nil)}}, func(c *Config) {
		c.CallTimeout = 20 * time.Millisecond
	})
	u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	r := u.result(t, "j1")
	if r.Status != jobv1.StatusSucceeded || r.Attempts != 2 || r.Output.Text != "fine" {
		t.Fatalf("status %s attempts %d output %+v error %+v; want succeeded on the second attempt", r.Status, r.Attempts, r.Output, r.Error)
	}
	for i, d := range u.conv.deadlines {
		if !d {
			t.Errorf("call %d had no deadline", i)
		}
	}
	if !strings.Contains(u.logs.String(), `"error_code":"timeout"`) {
		t.Errorf("logs do not report the timeout:\n%s", u.logs)
	}
}

func TestStalledCallsExhaustRetries(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{stall: true}, {stall: true}}, func(c *Config) {
		c.CallTimeout = 10 * time.Millisecond
		c.Retry.MaxAttempts = 2
	})
	err := u.p.Process(context.Background(), msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	if retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, ErrRetriesExhausted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Process = %v, want a release after %s wrapping ErrRetriesExhausted and the deadline", err, worker.DefaultReleaseDelay)
	}
}

// When the job's own context ends during a stalled call, Process returns at
// once and releases the job for another worker.
func TestCancelDuringStalledCallReturnsPromptly(t *testing.T) {
	t.Parallel()
	stalling := make(chan struct{})
	u := newUnit(t, []reply{{stall: true}}, nil) // CallTimeout: the default 10m
	u.conv.stalling = stalling
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stalling; cancel() }()
	err := u.p.Process(ctx, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	if retryDelay(err) != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Process = %v, want an immediate release wrapping context.Canceled", err)
	}
}

// The result is written even when the job's context ends first (the
// worker's drain window closed while the model answered): the model has been
// paid for, and releasing the job would pay for it again.
func TestResultIsWrittenAfterTheJobContextEnds(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{out: answer("late but paid for", types.StopReasonEndTurn, 10, 4, nil)}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u.p.model = bedrockModel{conv: &cancelOnCall{fakeConverser: u.conv, n: 1, cancel: cancel}, timeout: u.p.cfg.CallTimeout}
	if err := u.p.Process(ctx, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc})); err != nil {
		t.Fatalf("Process = %v, want nil: the answer was paid for and the write must still happen", err)
	}
	if r := u.result(t, "j1"); r.Status != jobv1.StatusSucceeded || r.Output.Text != "late but paid for" {
		t.Errorf("result %+v, want the answer written", r)
	}
	if u.metrics.Len() == 0 {
		t.Error("no metrics line for a written result")
	}
}

// cancelOnCall cancels the job's context after its n-th call returns, as the
// worker does when the drain window ends while a job finishes.
type cancelOnCall struct {
	*fakeConverser
	n      int
	calls  int
	cancel context.CancelFunc
}

func (c *cancelOnCall) Converse(ctx context.Context, in *bedrockruntime.ConverseInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	out, err := c.fakeConverser.Converse(ctx, in, optFns...)
	if c.calls++; c.calls == c.n {
		c.cancel()
	}
	return out, err
}
