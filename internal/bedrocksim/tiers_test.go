package bedrocksim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tierq/tierq/internal/bedrocksim"
)

// editBody rewrites the JSON body the SDK serialized, to send through the
// real client what its types cannot express: a malformed serviceTier, or a
// member in the wrong place, as other SDKs and hand-built requests can.
func editBody(edit func(body map[string]any)) func(*bedrockruntime.Options) {
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Build.Add(middleware.BuildMiddlewareFunc("tierqEditBody",
				func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
					req := in.Request.(*smithyhttp.Request)
					data, err := io.ReadAll(req.GetStream())
					if err != nil {
						return middleware.BuildOutput{}, middleware.Metadata{}, err
					}
					var body map[string]any
					if err := json.Unmarshal(data, &body); err != nil {
						return middleware.BuildOutput{}, middleware.Metadata{}, err
					}
					edit(body)
					data, _ = json.Marshal(body)
					if req, err = req.SetStream(bytes.NewReader(data)); err != nil {
						return middleware.BuildOutput{}, middleware.Metadata{}, err
					}
					req.ContentLength = int64(len(data))
					in.Request = req
					return next.HandleBuild(ctx, in)
				}), middleware.After)
		})
	}
}

// tieredConfig has "tiered", which takes every tier, and "plain", which takes
// only the default.
func tieredConfig() bedrocksim.Config {
	cfg := bedrocksim.DefaultConfig()
	cfg.Models["tiered"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1,
		ServiceTiers: []string{"flex", "priority", "reserved"}}
	cfg.Models["plain"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1}
	return cfg
}

func tier(t types.ServiceTierType) *types.ServiceTier { return &types.ServiceTier{Type: t} }

func TestServiceTierRejections(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, tieredConfig())
	tests := []struct {
		name  string
		model string
		in    func(*bedrockruntime.ConverseInput)
		opts  []func(*bedrockruntime.Options)
		want  []string // the message must contain each
	}{
		{"unknown type", "tiered", func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier("turbo") }, nil,
			[]string{"service tier", `"turbo"`, "tiered", "default, flex, priority, reserved"}},
		{"not an object", "tiered", nil, []func(*bedrockruntime.Options){editBody(func(b map[string]any) { b["serviceTier"] = "flex" })},
			[]string{"service tier", "tiered", "must be an object"}},
		{"type not a string", "tiered", nil, []func(*bedrockruntime.Options){editBody(func(b map[string]any) { b["serviceTier"] = map[string]any{"type": 1} })},
			[]string{"service tier", "tiered"}},
		{"type missing", "tiered", nil, []func(*bedrockruntime.Options){editBody(func(b map[string]any) { b["serviceTier"] = map[string]any{} })},
			[]string{"service tier", "tiered"}},
		{"inside inferenceConfig", "tiered", nil, []func(*bedrockruntime.Options){editBody(func(b map[string]any) {
			b["inferenceConfig"] = map[string]any{"maxTokens": 10, "serviceTier": map[string]any{"type": "flex"}}
		})}, []string{"extraneous key [serviceTier]", "inferenceConfig", "service tier belongs at the top level"}},
		{"unknown member of inferenceConfig", "tiered", nil, []func(*bedrockruntime.Options){editBody(func(b map[string]any) {
			b["inferenceConfig"] = map[string]any{"maxTokens": 10, "topK": 5}
		})}, []string{"extraneous key [topK]", "inferenceConfig"}},
		{"serviceTier in additionalModelRequestFields", "tiered", func(in *bedrockruntime.ConverseInput) {
			in.AdditionalModelRequestFields = document.NewLazyDocument(map[string]any{"serviceTier": map[string]any{"type": "flex"}})
		}, nil, []string{"extraneous key [serviceTier]", "additionalModelRequestFields", "tiered", "service tier belongs at the top level"}},
		{"service_tier in additionalModelRequestFields", "tiered", func(in *bedrockruntime.ConverseInput) {
			in.AdditionalModelRequestFields = document.NewLazyDocument(map[string]any{"service_tier": "flex"})
		}, nil, []string{"extraneous key [service_tier]", "tiered", "top level"}},
		{"flex on a model without it", "plain", func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier(types.ServiceTierTypeFlex) }, nil,
			[]string{"service tier", `"flex"`, "not supported", "plain"}},
		{"reserved on a built-in model without it", micro, func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier(types.ServiceTierTypeReserved) }, nil,
			[]string{"service tier", `"reserved"`, micro}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := &bedrockruntime.ConverseInput{ModelId: aws.String(tt.model), Messages: userText("hello")}
			if tt.in != nil {
				tt.in(in)
			}
			_, err := client.Converse(context.Background(), in, tt.opts...)
			var ve *types.ValidationException
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want ValidationException", err)
			}
			var re interface{ HTTPStatusCode() int }
			if errors.As(err, &re) && re.HTTPStatusCode() != 400 {
				t.Errorf("status %d, want 400", re.HTTPStatusCode())
			}
			for _, w := range tt.want {
				if !strings.Contains(ve.ErrorMessage(), w) {
					t.Errorf("message %q does not contain %q", ve.ErrorMessage(), w)
				}
			}
		})
	}
}

func TestServiceTierServedAndEchoed(t *testing.T) {
	t.Parallel()
	sim, client, _ := start(t, tieredConfig())
	tests := []struct {
		name string
		ask  *types.ServiceTier
		want types.ServiceTierType
	}{
		{"none asked is default", nil, types.ServiceTierTypeDefault},
		{"default", tier(types.ServiceTierTypeDefault), types.ServiceTierTypeDefault},
		{"flex", tier(types.ServiceTierTypeFlex), types.ServiceTierTypeFlex},
		{"priority", tier(types.ServiceTierTypePriority), types.ServiceTierTypePriority},
		{"reserved", tier(types.ServiceTierTypeReserved), types.ServiceTierTypeReserved},
	}
	for _, tt := range tests {
		out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId: aws.String("tiered"), Messages: userText("hello"), ServiceTier: tt.ask})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if out.ServiceTier == nil || out.ServiceTier.Type != tt.want {
			t.Errorf("%s: response serviceTier = %+v, want %s", tt.name, out.ServiceTier, tt.want)
		}
	}
	got := sim.Stats().Models["tiered"].Tiers
	want := map[string]int64{"default": 2, "flex": 1, "priority": 1, "reserved": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("stats tiers = %v, want %v", got, want)
			break
		}
	}
}

func TestFlexIsThrottledFirstNearTheQuota(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := tieredConfig()
	cfg.Now = clock.Now
	cfg.Models["rpm"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1,
		RPM: 10, ServiceTiers: []string{"flex"}} // flex share 0.8 (default): 8 flex calls a window
	cfg.Models["tpm"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1,
		TPM: 1000, ServiceTiers: []string{"flex"}, Flex: bedrocksim.FlexTier{QuotaShare: 0.5}}
	sim, client, _ := start(t, cfg)
	call := func(model string, ask types.ServiceTierType, maxTokens int32) error {
		_, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId: aws.String(model), Messages: userText("hi"), ServiceTier: tier(ask),
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(maxTokens)}})
		return err
	}
	type step struct {
		ask       types.ServiceTierType
		maxTokens int32
		throttled bool
	}
	flex, def := types.ServiceTierTypeFlex, types.ServiceTierTypeDefault
	tests := []struct {
		model string
		steps []step
		// reason is the throttle reason /_sim/stats counts for flex.
		reason string
	}{
		{"rpm", append(append(repeat(step{flex, 10, false}, 8),
			step{flex, 10, true},  // 9 > 0.8 × 10
			step{def, 10, false},  // the default tier still has the rest
			step{flex, 10, true},  // still above the flex share
			step{def, 10, false}), // the 10th request of the window
			step{def, 10, true}), // the quota itself
			"flex_rpm"},
		// Input is 1 token, so a call reserves 1 + maxTokens.
		{"tpm", []step{
			{flex, 600, true},  // 601 > 0.5 × 1,000
			{def, 600, false},  // 601 ≤ 1,000; settles at 1 + a few output tokens
			{flex, 400, false}, // within 500 once the first call settled
			{def, 1000, true},  // 4 settled + 1,001 > 1,000: the quota itself
		}, "flex_tpm"},
	}
	for _, tt := range tests {
		for i, s := range tt.steps {
			err := call(tt.model, s.ask, s.maxTokens)
			var thr *types.ThrottlingException
			if s.throttled != errors.As(err, &thr) {
				t.Fatalf("%s step %d (%s, maxTokens %d): err %v, want throttled %v", tt.model, i+1, s.ask, s.maxTokens, err, s.throttled)
			}
		}
		if got := sim.Stats().Models[tt.model].Throttled[tt.reason]; got < 1 {
			t.Errorf("%s: stats count %d %s throttles, want at least 1", tt.model, got, tt.reason)
		}
	}
	clock.Add(time.Minute)
	for i := range 8 {
		if err := call("rpm", flex, 10); err != nil {
			t.Fatalf("flex call %d after the window rolled: %v", i+1, err)
		}
	}
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestReservedOverflowsToDefault(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := bedrocksim.DefaultConfig()
	cfg.Now = clock.Now
	// Each call reserves 1 input token + 600 maxTokens and settles the same
	// (its answer is forced to 600 tokens). The reserved tier holds one such
	// call a window, the on-demand quota another.
	cfg.Models["r"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1,
		TPM: 700, ServiceTiers: []string{"reserved"}, ReservedTPM: 1000}
	sim, client, _ := start(t, cfg)
	call := func() (*bedrockruntime.ConverseOutput, error) {
		return client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId: aws.String("r"), Messages: userText("hi"), ServiceTier: tier(types.ServiceTierTypeReserved),
			System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "[[sim:output_tokens=600]]"}},
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(600)}})
	}
	for i, want := range []types.ServiceTierType{types.ServiceTierTypeReserved, types.ServiceTierTypeDefault} {
		out, err := call()
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if out.ServiceTier.Type != want {
			t.Errorf("call %d served as %s, want %s", i+1, out.ServiceTier.Type, want)
		}
	}
	// Reserved capacity and the on-demand quota are both used up now.
	var thr *types.ThrottlingException
	if _, err := call(); !errors.As(err, &thr) {
		t.Errorf("third call: %v, want ThrottlingException (reserved full, overflow above the quota)", err)
	}
	st := sim.Stats().Models["r"]
	if st.Tiers["reserved"] != 1 || st.Tiers["default"] != 1 || st.Window.ReservedTierTokens == 0 {
		t.Errorf("tiers %v, reserved-tier window tokens %d; want one reserved, one default overflow, reserved tokens counted",
			st.Tiers, st.Window.ReservedTierTokens)
	}
	clock.Add(time.Minute)
	if out, err := call(); err != nil || out.ServiceTier.Type != types.ServiceTierTypeReserved {
		t.Errorf("after the window rolled: %v, want served as reserved again", err)
	}
}

// sleepRecorder is a Sleep that records each simulated latency and returns at once.
type sleepRecorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *sleepRecorder) Sleep(_ context.Context, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d = append(r.d, d)
}

func (r *sleepRecorder) last() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.d[len(r.d)-1]
}

func TestTierLatency(t *testing.T) {
	t.Parallel()
	rec := &sleepRecorder{}
	cfg := bedrocksim.DefaultConfig()
	cfg.Sleep, cfg.LatencyScale = rec.Sleep, 1
	lat := bedrocksim.Latency{FirstToken: time.Second} // no per-token time, no jitter
	all := []string{"flex", "priority"}
	cfg.Models["defaults"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1,
		ServiceTiers: all, Latency: lat}
	cfg.Models["tuned"] = bedrocksim.Model{ContextWindow: 10_000, MaxOutputTokens: 1000, OutputBurndown: 1,
		ServiceTiers: all, Latency: lat,
		Flex: bedrocksim.FlexTier{LatencyFactor: 3}, Priority: bedrocksim.PriorityTier{LatencyFactor: 0.5}}
	_, client, _ := start(t, cfg)
	tests := []struct {
		model string
		ask   types.ServiceTierType
		want  time.Duration
	}{
		{"defaults", types.ServiceTierTypeDefault, time.Second},
		{"defaults", types.ServiceTierTypeFlex, 2 * time.Second},
		{"defaults", types.ServiceTierTypePriority, 800 * time.Millisecond},
		{"tuned", types.ServiceTierTypeFlex, 3 * time.Second},
		{"tuned", types.ServiceTierTypePriority, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId: aws.String(tt.model), Messages: userText("hello"), ServiceTier: tier(tt.ask)})
		if err != nil {
			t.Fatalf("%s %s: %v", tt.model, tt.ask, err)
		}
		if got := rec.last(); got != tt.want {
			t.Errorf("%s %s: latency %s, want %s", tt.model, tt.ask, got, tt.want)
		}
		if *out.Metrics.LatencyMs != tt.want.Milliseconds() {
			t.Errorf("%s %s: metrics.latencyMs %d, want %d", tt.model, tt.ask, *out.Metrics.LatencyMs, tt.want.Milliseconds())
		}
	}
}
