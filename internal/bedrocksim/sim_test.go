package bedrocksim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
)

const (
	micro  = "us.amazon.nova-micro-v1:0"
	sonnet = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
)

// fakeClock is a settable clock for quota windows.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
}

// start serves cfg and returns the simulator and a real SDK client for it,
// with SDK retries off so every error reaches the test as it was sent.
func start(t testing.TB, cfg bedrocksim.Config) (*bedrocksim.Server, *bedrockruntime.Client, string) {
	t.Helper()
	sim, err := bedrocksim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, emulator.Bedrock(srv.URL), srv.URL
}

func userText(texts ...string) []types.Message {
	var blocks []types.ContentBlock
	for _, t := range texts {
		blocks = append(blocks, &types.ContentBlockMemberText{Value: t})
	}
	return []types.Message{{Role: types.ConversationRoleUser, Content: blocks}}
}

func guarded(instruction, doc string) []types.Message {
	return []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{
		&types.ContentBlockMemberText{Value: instruction},
		&types.ContentBlockMemberGuardContent{Value: &types.GuardrailConverseContentBlockMemberText{
			Value: types.GuardrailConverseTextBlock{Text: aws.String(doc)}}},
	}}}
}

func text(t *testing.T, out *bedrockruntime.ConverseOutput) string {
	t.Helper()
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok || len(msg.Value.Content) != 1 {
		t.Fatalf("output is %T, want one text block", out.Output)
	}
	tb, ok := msg.Value.Content[0].(*types.ContentBlockMemberText)
	if !ok {
		t.Fatalf("content is %T, want text", msg.Value.Content[0])
	}
	return tb.Value
}

const doc = `Quarterly report. Revenue grew 12% to $4.2 million in the third quarter. ` +
	`Costs fell as the team moved batch work to cheaper models. Headcount stayed flat. ` +
	`The board approved the budget for next year. Customer churn dropped to 3%. ` +
	`The new region opened in October and already serves a fifth of traffic. ` +
	`Risks remain in supply costs and in the pace of hiring.`

func TestConverseTasksThroughSDK(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	tests := []struct {
		name   string
		system string
		check  func(t *testing.T, out string)
	}{
		{"summary is shorter than the document", "Summarize the document in a few sentences.", func(t *testing.T, out string) {
			if out == "" || len(out) >= len(doc) {
				t.Errorf("summary has %d characters, document %d", len(out), len(doc))
			}
		}},
		{"classification is one label", "Classify the document. Labels: finance, sports, weather", func(t *testing.T, out string) {
			if out != "finance" && out != "sports" && out != "weather" {
				t.Errorf("label = %q, want one of the labels", out)
			}
		}},
		{"extraction is a JSON object", "Extract these fields as JSON. Fields: revenue, amount, dates", func(t *testing.T, out string) {
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("output %q is not a JSON object: %v", out, err)
			}
			if m["amount"] != "$4.2" {
				t.Errorf("amount = %v, want $4.2", m["amount"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := &bedrockruntime.ConverseInput{
				ModelId:         aws.String(micro),
				System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: tt.system}},
				Messages:        userText(doc),
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(500)},
			}
			first, err := client.Converse(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			again, err := client.Converse(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if text(t, first) != text(t, again) {
				t.Errorf("same request gave %q then %q", text(t, first), text(t, again))
			}
			tt.check(t, text(t, first))
			if first.StopReason != types.StopReasonEndTurn {
				t.Errorf("stopReason = %s, want end_turn", first.StopReason)
			}
			u := first.Usage
			wantIn := int32(bedrocksim.EstimateTokens(tt.system) + bedrocksim.EstimateTokens(doc))
			if d := *u.InputTokens - wantIn; d < -1 || d > 1 {
				t.Errorf("inputTokens = %d, want about %d", *u.InputTokens, wantIn)
			}
			if *u.OutputTokens != int32(bedrocksim.EstimateTokens(text(t, first))) || *u.TotalTokens != *u.InputTokens+*u.OutputTokens {
				t.Errorf("usage = %d in, %d out, %d total for output %q", *u.InputTokens, *u.OutputTokens, *u.TotalTokens, text(t, first))
			}
			if first.Metrics == nil || first.Metrics.LatencyMs == nil {
				t.Error("metrics.latencyMs missing")
			}
		})
	}
}

func TestStopReasons(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	long := "Write at length. [[sim:output_tokens=300]]"
	tests := []struct {
		name      string
		maxTokens int32
		stops     []string
		want      types.StopReason
		wantOut   int32
	}{
		{"cut at maxTokens", 50, nil, types.StopReasonMaxTokens, 50},
		{"fits", 400, nil, types.StopReasonEndTurn, 300},
		{"stop sequence", 400, []string{"grew"}, types.StopReasonStopSequence, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
				ModelId:  aws.String(micro),
				Messages: guarded(long, doc),
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(tt.maxTokens),
					StopSequences: tt.stops},
			})
			if err != nil {
				t.Fatal(err)
			}
			if out.StopReason != tt.want {
				t.Errorf("stopReason = %s, want %s", out.StopReason, tt.want)
			}
			if tt.wantOut >= 0 && *out.Usage.OutputTokens != tt.wantOut {
				t.Errorf("outputTokens = %d, want %d", *out.Usage.OutputTokens, tt.wantOut)
			}
			if tt.stops != nil && strings.Contains(text(t, out), tt.stops[0]) {
				t.Errorf("output %q still contains the stop sequence", text(t, out))
			}
		})
	}
}

func TestErrorsAreTypedSDKErrors(t *testing.T) {
	t.Parallel()
	cfg := bedrocksim.DefaultConfig()
	cfg.Models["off"] = bedrocksim.Model{ContextWindow: 1000, MaxOutputTokens: 100, OutputBurndown: 1, Disabled: true}
	cfg.Models["tiny"] = bedrocksim.Model{ContextWindow: 10, MaxOutputTokens: 100, OutputBurndown: 1}
	cfg.Models["throttled"] = bedrocksim.Model{ContextWindow: 1000, MaxOutputTokens: 100, OutputBurndown: 1, RPM: 1}
	for name, f := range map[string]bedrocksim.Faults{
		"f500": {InternalError: 1}, "f503": {ServiceUnavailable: 1}, "f408": {Timeout: 1}, "fnr": {NotReady: 1},
	} {
		cfg.Models[name] = bedrocksim.Model{ContextWindow: 1000, MaxOutputTokens: 100, OutputBurndown: 1, Faults: f}
	}
	sim, client, _ := start(t, cfg)
	call := func(model string, mutate func(*bedrockruntime.ConverseInput)) error {
		in := &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: userText("hello")}
		if mutate != nil {
			mutate(in)
		}
		_, err := client.Converse(context.Background(), in)
		return err
	}
	// Use up the throttled model's one request.
	if err := call("throttled", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		model  string
		mutate func(*bedrockruntime.ConverseInput)
		target any
		status int
	}{
		{"unknown model", "no.such-model-v1:0", nil, new(*types.ValidationException), 400},
		{"model not enabled", "off", nil, new(*types.AccessDeniedException), 403},
		{"input over context window", "tiny", func(in *bedrockruntime.ConverseInput) { in.Messages = userText(doc) }, new(*types.ValidationException), 400},
		{"maxTokens above limit", micro, func(in *bedrockruntime.ConverseInput) {
			in.InferenceConfig = &types.InferenceConfiguration{MaxTokens: aws.Int32(5001)}
		}, new(*types.ValidationException), 400},
		{"empty messages", micro, func(in *bedrockruntime.ConverseInput) { in.Messages = []types.Message{} }, new(*types.ValidationException), 400},
		{"starts with assistant", micro, func(in *bedrockruntime.ConverseInput) {
			in.Messages = []types.Message{{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}}
		}, new(*types.ValidationException), 400},
		{"unknown guardrail", micro, func(in *bedrockruntime.ConverseInput) {
			in.GuardrailConfig = &types.GuardrailConfiguration{GuardrailIdentifier: aws.String("nope"), GuardrailVersion: aws.String("1")}
		}, new(*types.ResourceNotFoundException), 404},
		{"unknown guardrail version", micro, func(in *bedrockruntime.ConverseInput) {
			in.GuardrailConfig = &types.GuardrailConfiguration{GuardrailIdentifier: aws.String(bedrocksim.DefaultGuardrailID), GuardrailVersion: aws.String("9")}
		}, new(*types.ResourceNotFoundException), 404},
		{"throttled", "throttled", nil, new(*types.ThrottlingException), 429},
		{"internal error", "f500", nil, new(*types.InternalServerException), 500},
		{"unavailable", "f503", nil, new(*types.ServiceUnavailableException), 503},
		{"model timeout", "f408", nil, new(*types.ModelTimeoutException), 408},
		{"model not ready", "fnr", nil, new(*types.ModelNotReadyException), 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := call(tt.model, tt.mutate)
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			if !errors.As(err, tt.target) {
				t.Fatalf("error %v (%T) is not %T", err, err, tt.target)
			}
			var re interface{ HTTPStatusCode() int }
			if errors.As(err, &re) && re.HTTPStatusCode() != tt.status {
				t.Errorf("status = %d, want %d", re.HTTPStatusCode(), tt.status)
			}
		})
	}
	st := sim.Stats()
	if got := st.Models["f500"].Errors["InternalServerException"]; got != 1 {
		t.Errorf("stats count %d injected 500s, want 1", got)
	}
	if got := st.Models["throttled"].Throttled["rpm"]; got != 1 {
		t.Errorf("stats count %d RPM throttles, want 1", got)
	}
}

func TestThrottlesExactlyAtQuotaAndRecoversWhenWindowRolls(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := bedrocksim.DefaultConfig()
	cfg.Now = clock.Now
	cfg.Models["m"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1, RPM: 3}
	// Each call reserves about 1 input token + 400 maxTokens = 401; three fit in 1,250.
	cfg.Models["t"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1, TPM: 1250}
	_, client, _ := start(t, cfg)
	call := func(model string) error {
		_, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId: aws.String(model), Messages: userText("hi"),
			System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "[[sim:output_tokens=400]]"}},
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(400)},
		})
		return err
	}
	for _, model := range []string{"m", "t"} {
		for i := range 3 {
			if err := call(model); err != nil {
				t.Fatalf("%s call %d: %v, want success within quota", model, i+1, err)
			}
		}
		var thr *types.ThrottlingException
		if err := call(model); !errors.As(err, &thr) {
			t.Fatalf("%s call 4: %v, want ThrottlingException", model, err)
		}
	}
	clock.Add(time.Minute)
	for _, model := range []string{"m", "t"} {
		if err := call(model); err != nil {
			t.Fatalf("%s after the window rolled: %v, want success", model, err)
		}
	}
}

// gate is a Sleep that holds every simulated call until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Sleep(ctx context.Context, d time.Duration) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
}

// startGated serves one model "m" whose calls wait in g until released, on a fake clock.
func startGated(t *testing.T, burndown, tpm int) (*gate, *fakeClock, *bedrocksim.Server, *bedrockruntime.Client) {
	clock := newClock()
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	cfg := bedrocksim.DefaultConfig()
	cfg.Now, cfg.Sleep, cfg.LatencyScale = clock.Now, g.Sleep, 1
	cfg.Models["m"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 2000, OutputBurndown: burndown,
		TPM: tpm, Latency: bedrocksim.Latency{FirstToken: time.Second}}
	sim, client, _ := start(t, cfg)
	return g, clock, sim, client
}

func TestReservationThenSettlement(t *testing.T) {
	t.Parallel()
	g, _, sim, client := startGated(t, 5, 100_000)

	prompt := strings.Repeat("abcd", 100) // 100 input tokens
	done := make(chan *bedrockruntime.ConverseOutput)
	go func() {
		out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId: aws.String("m"), Messages: userText(prompt + "[[sim:output_tokens=40]]"),
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(1000)},
		})
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	<-g.entered
	st := sim.Stats().Models["m"]
	in := bedrocksim.EstimateTokens(prompt + "[[sim:output_tokens=40]]")
	if want := in + 1000; st.Window.Tokens != want {
		t.Errorf("while running: window tokens = %d, want reservation %d (input %d + maxTokens 1000)", st.Window.Tokens, want, in)
	}
	if st.InFlight != 1 {
		t.Errorf("in flight = %d, want 1", st.InFlight)
	}
	close(g.release)
	out := <-done
	st = sim.Stats().Models["m"]
	if got, want := st.Window.Tokens, in+int(*out.Usage.OutputTokens)*5; got != want {
		t.Errorf("after settlement: window tokens = %d, want input %d + output %d × burndown 5 = %d",
			got, in, *out.Usage.OutputTokens, want)
	}
	if st.InFlight != 0 || st.PeakInFlight != 1 {
		t.Errorf("in flight = %d, peak %d; want 0 and 1", st.InFlight, st.PeakInFlight)
	}
}

func TestLongCallKeepsItsReservationAcrossTheWindow(t *testing.T) {
	t.Parallel()
	g, clock, _, client := startGated(t, 1, 1500)
	call := func() error {
		_, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId: aws.String("m"), Messages: userText("hi"),
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(1000)},
		})
		return err
	}
	errc := make(chan error)
	go func() { errc <- call() }()
	<-g.entered
	clock.Add(time.Minute)
	var thr *types.ThrottlingException
	if err := call(); !errors.As(err, &thr) {
		t.Fatalf("second call while the first holds 1,001 of 1,500 tokens: %v, want ThrottlingException", err)
	}
	close(g.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	go func() { <-g.entered }()
	if err := call(); err != nil {
		t.Fatalf("after the first call settled: %v, want success", err)
	}
}
