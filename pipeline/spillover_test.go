package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// Unit tests of spillover to a tier's fallback model. The unit clock ticks
// 10ms per reading and a throttled call reads it three times, so with a
// 50ms delay the third throttle (60ms after the first) moves the call.

const (
	ecoFallback    = "global.amazon.nova-micro-v1:0"
	spillDelay     = 50 * time.Millisecond
	spillThrottles = 3 // throttles on the tier's model before the move
)

var (
	throttled = reply{err: sdkErr(429, &types.ThrottlingException{Message: aws.String("Too many requests, please wait before trying again.")})}
	answered  = reply{out: answer("a summary", types.StopReasonEndTurn, 40, 5, unitsTrace(1, 1, 1))}
	cutOff    = reply{out: answer("cut off", types.StopReasonMaxTokens, 50, 100, nil)}
)

// withFallback gives the economy tier a fallback model.
func withFallback(c *Config) {
	spillTo(&c.Tiers.Tiers[0], ecoFallback)
	c.Tiers.Tiers[0].SpilloverAfter = spillDelay
}

func times(r reply, n int) []reply {
	out := make([]reply, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// modelsCalled lists the model ID of every Converse call, in order.
func (u *unit) modelsCalled() []string {
	u.conv.mu.Lock()
	defer u.conv.mu.Unlock()
	var ids []string
	for _, in := range u.conv.calls {
		ids = append(ids, aws.ToString(in.ModelId))
	}
	return ids
}

// modelLimiter records the model of every permit asked for.
type modelLimiter struct {
	mu     sync.Mutex
	models []string
}

func (l *modelLimiter) Acquire(_ context.Context, model string, _ int) (limiter.Permit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.models = append(l.models, model)
	return noPermit{}, nil
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestSpilloverToTheFallbackModel(t *testing.T) {
	t.Parallel()
	eco, _ := tiering.Default().Tier("economy")
	u := newUnit(t, append(times(throttled, spillThrottles), answered), withFallback)
	lim := &modelLimiter{}
	u.p.lim = lim
	u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))

	r := u.result(t, "j1")
	if r.Status != jobv1.StatusSucceeded || r.Tier != "economy" || r.ModelID != ecoFallback {
		t.Fatalf("status %s tier %s model %s, want succeeded on economy answered by %s", r.Status, r.Tier, r.ModelID, ecoFallback)
	}
	sp := r.Spillover
	if sp == nil || sp.From != eco.ModelID || sp.To != ecoFallback || sp.After < spillDelay.Milliseconds() || sp.After >= 2*spillDelay.Milliseconds() {
		t.Errorf("spillover = %+v, want %s → %s after %s or a little more of throttling", sp, eco.ModelID, ecoFallback, spillDelay)
	}
	want := append(repeat(eco.ModelID, spillThrottles), ecoFallback)
	if got := u.modelsCalled(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("calls went to %v, want %v", got, want)
	}
	// The limiter is per model: the fallback call waits for the fallback's
	// permits, not the throttled model's.
	if strings.Join(lim.models, " ") != strings.Join(want, " ") {
		t.Errorf("permits asked for %v, want %v", lim.models, want)
	}
	// Every call counts; the fallback answers at its tier's prices.
	if r.Attempts != spillThrottles+1 {
		t.Errorf("attempts = %d, want %d (throttles included)", r.Attempts, spillThrottles+1)
	}
	u.conv.mu.Lock()
	last := u.conv.calls[len(u.conv.calls)-1]
	u.conv.mu.Unlock()
	if last.GuardrailConfig == nil || aws.ToString(last.GuardrailConfig.GuardrailIdentifier) != eco.Guardrail.ID ||
		aws.ToInt32(last.InferenceConfig.MaxTokens) != int32(eco.MaxOutputTokens) {
		t.Errorf("the fallback call lost the tier's guardrail or limits: %+v %+v", last.GuardrailConfig, last.InferenceConfig)
	}
	usage := callUsage(answered.out, guardrailOutcome(eco.Guardrail, answered.out.StopReason, answered.out.Trace))
	if r.Usage != usage || !testenv.SameCost(r.Cost, eco.Prices.Cost(usage)) {
		t.Errorf("usage %+v cost %+v, want the answer's usage at economy prices", r.Usage, r.Cost)
	}
	if st := u.p.Stats(); st.Throttles != spillThrottles || st.Attempts != spillThrottles+1 || st.Released != 0 {
		t.Errorf("stats = %+v, want %d throttles, %d attempts, nothing released", st, spillThrottles, spillThrottles+1)
	}
	if !strings.Contains(u.metrics.String(), `"ModelId":"`+ecoFallback+`"`) {
		t.Errorf("metrics line %s, want ModelId %s", u.metrics, ecoFallback)
	}
	var logged struct {
		JobID        string `json:"job_id"`
		Tier         string `json:"tier"`
		From         string `json:"from"`
		To           string `json:"to"`
		ThrottledFor string `json:"throttled_for"`
	}
	for _, l := range strings.Split(u.logs.String(), "\n") {
		if strings.Contains(l, `"level":"INFO"`) && strings.Contains(l, "spilling over") {
			if err := json.Unmarshal([]byte(l), &logged); err != nil {
				t.Fatal(err)
			}
		}
	}
	if logged.JobID != "j1" || logged.Tier != "economy" || logged.From != eco.ModelID || logged.To != ecoFallback ||
		logged.ThrottledFor != (time.Duration(sp.After)*time.Millisecond).String() {
		t.Errorf("spillover log = %+v, want job j1 on economy from %s to %s after %dms\n%s", logged, eco.ModelID, ecoFallback, sp.After, u.logs)
	}
}

// Without a fallback, or with throttling shorter than the delay, calls stay
// on the tier's model.
func TestNoSpillover(t *testing.T) {
	t.Parallel()
	eco, _ := tiering.Default().Tier("economy")
	tests := []struct {
		name      string
		change    func(*Config)
		throttles int
	}{
		{"no fallback configured", nil, 2 * spillThrottles},
		{"throttled for less than the delay", withFallback, spillThrottles - 1},
		{"delay defaulted to 30s", func(c *Config) { spillTo(&c.Tiers.Tiers[0], ecoFallback) }, 2 * spillThrottles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, append(times(throttled, tt.throttles), answered), tt.change)
			u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
			r := u.result(t, "j1")
			if r.Status != jobv1.StatusSucceeded || r.ModelID != eco.ModelID || r.Spillover != nil || r.Attempts != tt.throttles+1 {
				t.Errorf("status %s model %s spillover %+v attempts %d, want succeeded on %s without spillover after %d calls",
					r.Status, r.ModelID, r.Spillover, r.Attempts, eco.ModelID, tt.throttles+1)
			}
			if got := u.modelsCalled(); strings.Join(got, " ") != strings.Join(repeat(eco.ModelID, tt.throttles+1), " ") {
				t.Errorf("calls went to %v, want all to %s", got, eco.ModelID)
			}
			if strings.Contains(u.logs.String(), "spilling over") {
				t.Error("logs report a spillover")
			}
			raw := u.store.object("results", jobv1.ResultKey(DefaultResultsPrefix, "j1"))
			if strings.Contains(string(raw), "spillover") {
				t.Errorf("result mentions spillover: %s", raw)
			}
		})
	}
}

// A call moves once: throttles on the fallback are snoozed, within the same
// budget, and then the job is released.
func TestThrottledFallbackIsSnoozedThenReleased(t *testing.T) {
	t.Parallel()
	eco, _ := tiering.Default().Tier("economy")
	u := newUnit(t, times(throttled, 100), func(c *Config) {
		withFallback(c)
		c.Retry = RetryConfig{MaxAttempts: 2, MaxSnooze: 200 * time.Millisecond}
	})
	err := u.p.Process(context.Background(), msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	var ex *exhaustedError
	if retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, ErrRetriesExhausted) || !errors.As(err, &ex) || ex.model != ecoFallback {
		t.Fatalf("Process = %v, want a release saying %s is still throttled", err, ecoFallback)
	}
	got := u.modelsCalled()
	// 200ms of budget at 30ms a throttle is 7 calls; the exact figure is the
	// clock's business, the shape is the test's.
	if len(got) < spillThrottles+2 || len(got) > 10 {
		t.Fatalf("%d calls, want the budget to end it after a few", len(got))
	}
	want := append(repeat(eco.ModelID, spillThrottles), repeat(ecoFallback, len(got)-spillThrottles)...)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("calls went to %v, want %d to %s then the rest to %s", got, spillThrottles, eco.ModelID, ecoFallback)
	}
	if n := strings.Count(u.logs.String(), "spilling over"); n != 1 {
		t.Errorf("%d spillover logs, want 1", n)
	}
	if u.store.puts != 0 {
		t.Errorf("%d writes, want none for a released job", u.store.puts)
	}
}

// A permanent error from the fallback fails the job, and the result names
// the model that failed and how the call got there.
func TestFallbackRejectionFailsNamingTheFallback(t *testing.T) {
	t.Parallel()
	eco, _ := tiering.Default().Tier("economy")
	denied := reply{err: sdkErr(403, &types.AccessDeniedException{Message: aws.String("no access")})}
	u := newUnit(t, append(times(throttled, spillThrottles), denied), withFallback)
	u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	r := u.result(t, "j1")
	if r.Status != jobv1.StatusFailed || r.Error == nil || r.Error.Code != jobv1.CodeAccessDenied || !strings.Contains(r.Error.Message, ecoFallback) {
		t.Fatalf("status %s error %+v, want failed with access_denied naming %s", r.Status, r.Error, ecoFallback)
	}
	if r.ModelID != ecoFallback || r.Spillover == nil || r.Spillover.From != eco.ModelID || r.Spillover.To != ecoFallback {
		t.Errorf("model %s spillover %+v, want %s reached by spillover from %s", r.ModelID, r.Spillover, ecoFallback, eco.ModelID)
	}
	if r.Attempts != spillThrottles+1 {
		t.Errorf("attempts = %d, want %d", r.Attempts, spillThrottles+1)
	}
}

// Spillover describes the call that produced the answer: an escalation
// replaces it, a failed escalation keeps it with the answer it came with.
func TestSpilloverAndEscalation(t *testing.T) {
	t.Parallel()
	tiers := tiering.Default()
	eco, _ := tiers.Tier("economy")
	std, _ := tiers.Tier("standard")
	denied := reply{err: sdkErr(403, &types.AccessDeniedException{Message: aws.String("no access")})}
	tests := []struct {
		name      string
		replies   []reply
		model     string // that answered
		spillover *jobv1.Spillover
		failed    string // in Escalations[0].Failed
	}{
		{"economy spilled, standard answered",
			append(times(throttled, spillThrottles), cutOff, answered), std.ModelID, nil, ""},
		{"economy spilled, standard failed",
			append(times(throttled, spillThrottles), cutOff, denied), ecoFallback,
			&jobv1.Spillover{From: eco.ModelID, To: ecoFallback}, "access_denied"},
		{"economy answered, standard spilled",
			append([]reply{cutOff}, append(times(throttled, spillThrottles), answered)...), "global.std",
			&jobv1.Spillover{From: std.ModelID, To: "global.std"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, tt.replies, func(c *Config) {
				withFallback(c)
				spillTo(&c.Tiers.Tiers[1], "global.std")
				c.Tiers.Tiers[1].SpilloverAfter = spillDelay
			})
			u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
			r := u.result(t, "j1")
			if r.Status != jobv1.StatusSucceeded || r.ModelID != tt.model || len(r.Escalations) != 1 || !strings.HasPrefix(r.Escalations[0].Failed, tt.failed) {
				t.Fatalf("status %s model %s escalations %+v, want succeeded answered by %s, escalation failed %q",
					r.Status, r.ModelID, r.Escalations, tt.model, tt.failed)
			}
			got := r.Spillover
			if (got == nil) != (tt.spillover == nil) || got != nil && (got.From != tt.spillover.From || got.To != tt.spillover.To || got.After < spillDelay.Milliseconds()) {
				t.Errorf("spillover = %+v, want %+v", got, tt.spillover)
			}
			if r.Attempts != len(tt.replies) {
				t.Errorf("attempts = %d, want %d", r.Attempts, len(tt.replies))
			}
		})
	}
}

// spillTo gives a tier a fallback model, priced like the tier's own (a
// global. profile must be priced: the figures here do not matter).
func spillTo(t *tiering.Tier, model string) {
	t.FallbackModelID = model
	p := t.Prices
	t.FallbackPrices = &p
}
