package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// Model IDs of the spillover test: the default premium tier's model, and a
// global profile of the same model as its fallback.
const (
	premiumModel  = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
	premiumGlobal = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
)

// A premium job whose model has used up its one request a minute spills
// over to the global profile, through the real SDK client and the simulator.
func TestSpilloverOnTheSimulator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{
		sim: func(c *bedrocksim.Config) {
			m := c.Models[premiumModel]
			c.Models[premiumGlobal] = m // same model, another profile, its own quota
			m.RPM = 1
			c.Models[premiumModel] = m
			// A frozen simulator clock keeps the quota window from rolling
			// over between the warm-up and the job.
			c.Now = func() time.Time { return t0 }
		},
		// The env clock steps 5ms a reading and a throttled call reads it
		// three times: the third throttle, 30ms after the first, moves it.
		tiers: func(c *tiering.Config) {
			c.Tiers[2].FallbackModelID, c.Tiers[2].SpilloverAfter = premiumGlobal, 20*time.Millisecond
			// The global profile's own list price, 10% below the regional one.
			g := c.Tiers[2].Prices
			g.InputPerMTok, g.OutputPerMTok = 3.00, 15.00
			c.Tiers[2].FallbackPrices = &g
		},
	})
	e.process(jobBody(t, jobv1.Job{JobID: "warm-up", Task: "summarize", TierOverride: "premium", Text: "Use up the one request."}))
	if r := e.result("warm-up"); r.ModelID != premiumModel || r.Spillover != nil {
		t.Fatalf("warm-up answered by %s (spillover %+v), want %s without spillover", r.ModelID, r.Spillover, premiumModel)
	}
	before := e.modelRequests(premiumModel)

	body := jobBody(t, jobv1.Job{JobID: "example-spillover-0001", Task: "summarize", TierOverride: "premium",
		Text:     "Quarterly review. Revenue grew eight percent; churn fell to two percent after the support changes.",
		Metadata: map[string]string{"tenant": "acme"}})
	e.process(body)
	raw := e.rawResult("example-spillover-0001")
	var r jobv1.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != jobv1.StatusSucceeded || r.Tier != "premium" || r.ModelID != premiumGlobal {
		t.Fatalf("status %s (%+v) tier %s model %s, want succeeded on premium answered by %s", r.Status, r.Error, r.Tier, r.ModelID, premiumGlobal)
	}
	sp := r.Spillover
	if sp == nil || sp.From != premiumModel || sp.To != premiumGlobal || sp.After < 20 {
		t.Errorf("spillover = %+v, want %s → %s after at least 20ms", sp, premiumModel, premiumGlobal)
	}
	throttled, global := e.modelRequests(premiumModel)-before, e.modelRequests(premiumGlobal)
	if throttled < 2 || global != 1 || int64(r.Attempts) != throttled+global {
		t.Errorf("simulator saw %d throttled requests on %s and %d on %s, result counts %d attempts; want a few, 1, and their sum",
			throttled, premiumModel, global, premiumGlobal, r.Attempts)
	}
	if got := e.sim.Stats().Models[premiumModel].Throttled["rpm"]; got != throttled {
		t.Errorf("simulator throttled %d requests for RPM, want all %d of the job's", got, throttled)
	}
	if got := e.lim.count(limiter.Dropped); int64(got) != throttled {
		t.Errorf("limiter told %d drops, want %d", got, throttled)
	}
	// The answer is billed at the global profile's prices, not the tier
	// model's: one model ID, one price.
	premium, _ := e.cfg.Tiers.Tier("premium")
	st := e.sim.Stats().Models[premiumGlobal]
	if int64(r.Usage.InputTokens) != st.InputTokens || int64(r.Usage.OutputTokens) != st.OutputTokens ||
		!testenv.SameCost(r.Cost, premium.FallbackPrices.Cost(r.Usage)) || testenv.SameCost(r.Cost, premium.Prices.Cost(r.Usage)) {
		t.Errorf("usage %+v cost %+v, want the global profile's tokens at the global profile's prices", r.Usage, r.Cost)
	}
	// Call lines put the throttles on the regional model and the tokens on
	// the global one.
	var onRegional, onGlobal int
	for _, l := range e.callLines() {
		if l.JobID != "example-spillover-0001" {
			continue
		}
		switch l.ModelID {
		case premiumModel:
			onRegional += l.Throttles
			if l.InputTokens != 0 || l.ServiceTier != "" {
				t.Errorf("regional call line %+v, want throttles only", l)
			}
		case premiumGlobal:
			onGlobal += l.InputTokens
		}
	}
	if int64(onRegional) != throttled || onGlobal != r.Usage.InputTokens {
		t.Errorf("call lines: %d throttles on %s, %d input tokens on %s; want %d and %d", onRegional, premiumModel, onGlobal, premiumGlobal, throttled, r.Usage.InputTokens)
	}
	lines := e.metricLines()
	if m := lines[len(lines)-1]; m.JobID != "example-spillover-0001" || m.ModelID != premiumGlobal || m.Tier != "premium" ||
		int64(m.Throttles) != throttled || m.Attempts != r.Attempts {
		t.Errorf("metrics line %+v, want ModelId %s, tier premium, %d throttles, %d attempts", m, premiumGlobal, throttled, r.Attempts)
	}
	if !strings.Contains(e.logs.String(), `"msg":"model throttled; spilling over to the tier's fallback model"`) {
		t.Errorf("logs do not report the spillover:\n%s", e.logs)
	}
	checkGolden(t, "result-spillover.json", raw)
}

// The schema holds a spillover to its shape.
func TestResultSchemaChecksSpillover(t *testing.T) {
	t.Parallel()
	s := testenv.CompileSchema(t, "result.v1.schema.json", jobv1.ResultSchema)
	golden, err := os.ReadFile(filepath.Join(goldenDir, "result-spillover.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Validate(s, golden); err != nil {
		t.Fatalf("result-spillover.json fails the schema: %v", err)
	}
	tests := []struct {
		name     string
		from, to string
	}{
		{"negative throttled time", `"throttled_ms": \d+`, `"throttled_ms": -1`},
		{"no target model", `"to_model_id": "[^"]*",`, ``},
		{"unknown field", `"from_model_id":`, `"reason": "x", "from_model_id":`},
		{"not an object", `(?s)"spillover": \{.*?\}`, `"spillover": "global"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := regexp.MustCompile(tt.from).ReplaceAll(golden, []byte(tt.to))
			if bytes.Equal(b, golden) {
				t.Fatalf("golden has no %s", tt.from)
			}
			if err := testenv.Validate(s, b); err == nil {
				t.Errorf("the result schema accepts it:\n%s", b)
			}
		})
	}
}

// The shipped tiers have no fallback: a throttled job snoozes on its own
// model and is released, as before spillover existed.
func TestNoSpilloverWithTheDefaultTiers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{sim: func(c *bedrocksim.Config) {
		editModel(c, economyModel, func(m *bedrocksim.Model) {
			m.RPM = 1
		})
		c.Now = func() time.Time { return t0 }
	}, cfg: func(c *pipeline.Config) { c.Retry.MaxSnooze = 50 * time.Millisecond }})
	e.process(jobBody(t, jobv1.Job{JobID: "warm-up", Task: "summarize", Text: "Use up the one request."}))
	err := e.p.Process(context.Background(), message(jobBody(t, jobv1.Job{JobID: "j", Task: "summarize", Text: "Throttled."})))
	var thr *types.ThrottlingException
	var rel *worker.Released
	if !errors.Is(err, pipeline.ErrRetriesExhausted) || !errors.As(err, &thr) || !errors.As(err, &rel) {
		t.Fatalf("Process = %v, want a release: throttled on %s with nowhere to spill", err, economyModel)
	}
	if strings.Contains(e.logs.String(), "spilling over") || bytes.Contains(e.rawResult("warm-up"), []byte("spillover")) {
		t.Error("a job spilled over without a fallback configured")
	}
}
