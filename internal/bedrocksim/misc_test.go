package bedrocksim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/internal/bedrocksim"
)

func TestCountTokensMatchesConverseUsage(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	sys := []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Summarize."}}
	msgs := guarded("Be brief.", doc)
	ct, err := client.CountTokens(context.Background(), &bedrockruntime.CountTokensInput{
		ModelId: aws.String(sonnet),
		Input:   &types.CountTokensInputMemberConverse{Value: types.ConverseTokensRequest{System: sys, Messages: msgs}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(sonnet), System: sys, Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if *ct.InputTokens != *out.Usage.InputTokens {
		t.Errorf("CountTokens = %d, Converse inputTokens = %d; want equal", *ct.InputTokens, *out.Usage.InputTokens)
	}
	_, err = client.CountTokens(context.Background(), &bedrockruntime.CountTokensInput{
		ModelId: aws.String("nope"),
		Input:   &types.CountTokensInputMemberConverse{Value: types.ConverseTokensRequest{Messages: msgs}},
	})
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Errorf("unknown model: %v, want ValidationException", err)
	}
}

func TestPromptCacheWritesThenReads(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	prefix := strings.Repeat("policy text ", 500) // 6,000 characters, 1,500 tokens
	in := &bedrockruntime.ConverseInput{
		ModelId: aws.String(sonnet),
		System: []types.SystemContentBlock{
			&types.SystemContentBlockMemberText{Value: prefix},
			&types.SystemContentBlockMemberCachePoint{Value: types.CachePointBlock{Type: types.CachePointTypeDefault}},
		},
		Messages: userText("Summarize the policy."),
	}
	first, err := client.Converse(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Converse(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if w := first.Usage.CacheWriteInputTokens; w == nil || *w != 1500 || *first.Usage.CacheReadInputTokens != 0 {
		t.Errorf("first call cache write %v read %v, want 1500 and 0", w, first.Usage.CacheReadInputTokens)
	}
	if r := second.Usage.CacheReadInputTokens; r == nil || *r != 1500 || *second.Usage.CacheWriteInputTokens != 0 {
		t.Errorf("second call cache read %v write %v, want 1500 and 0", r, second.Usage.CacheWriteInputTokens)
	}
	if *second.Usage.InputTokens != *first.Usage.InputTokens || *second.Usage.TotalTokens != *second.Usage.InputTokens+1500+*second.Usage.OutputTokens {
		t.Errorf("usage first %+v second %+v: cached tokens must be outside inputTokens and inside totalTokens", first.Usage, second.Usage)
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	_, client, url := start(t, bedrocksim.DefaultConfig())
	if _, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(micro), Messages: userText("hi")}); err != nil {
		t.Fatal(err)
	}
	post := func(path, body string) *http.Response {
		t.Helper()
		resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	stats := func() bedrocksim.Stats {
		t.Helper()
		resp, err := http.Get(url + "/_sim/stats")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st bedrocksim.Stats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := stats().Models[micro]
	if st.Requests != 1 || st.Accepted != 1 || st.InputTokens != 1 || st.Quota.RPM != 2000 {
		t.Errorf("stats = %+v, want 1 request, 1 accepted, 1 input token, rpm 2000", st)
	}

	if resp := post("/_sim/quota", fmt.Sprintf(`{"model_id":%q,"factor":0.5}`, micro)); resp.StatusCode != 200 {
		t.Fatalf("quota change: status %d", resp.StatusCode)
	}
	if q := stats().Models[micro].Quota; q.RPM != 1000 || q.TPM != 2_000_000 {
		t.Errorf("after halving, quota = %+v, want 1000 rpm and 2,000,000 tpm", q)
	}
	if resp := post("/_sim/quota", `{"model_id":"nope","rpm":1}`); resp.StatusCode != 400 {
		t.Errorf("quota for unknown model: status %d, want 400", resp.StatusCode)
	}

	if resp := post("/_sim/faults", fmt.Sprintf(`{"model_id":%q,"service_unavailable":1}`, micro)); resp.StatusCode != 200 {
		t.Fatalf("faults: status %d", resp.StatusCode)
	}
	_, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(micro), Messages: userText("hi")})
	var su *types.ServiceUnavailableException
	if !errors.As(err, &su) {
		t.Errorf("after injecting 503s: %v, want ServiceUnavailableException", err)
	}
	if resp := post("/_sim/faults", `{"timeout":2}`); resp.StatusCode != 400 {
		t.Errorf("fault fraction 2: status %d, want 400", resp.StatusCode)
	}

	post("/_sim/reset", "")
	if st := stats().Models[micro]; st.Requests != 0 || st.Errors["ServiceUnavailableException"] != 0 {
		t.Errorf("after reset, stats = %+v, want zero counters", st)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../testdata/sim/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := bedrocksim.LoadConfig(data)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	haiku := cfg.Models["us.anthropic.claude-haiku-4-5-20251001-v1:0"]
	if haiku.RPM != 100 || haiku.MaxOutputTokens != 64_000 || haiku.OutputBurndown != 5 {
		t.Errorf("haiku = %+v: want rpm overridden to 100 and built-in limits kept", haiku)
	}
	if cfg.Minute != 6*time.Second || cfg.LatencyScale != 0.1 || len(cfg.Guardrails) != 2 {
		t.Errorf("minute %s, latency scale %g, %d guardrails; want 6s, 0.1, 2", cfg.Minute, cfg.LatencyScale, len(cfg.Guardrails))
	}

	pro := cfg.Models["us.amazon.nova-pro-v1:0"]
	if len(pro.ServiceTiers) != 3 || pro.Flex.QuotaShare != 0.5 || pro.Flex.LatencyFactor != 3 ||
		pro.Priority.LatencyFactor != 0.75 || pro.ReservedTPM != 100_000 || pro.RPM != 200 {
		t.Errorf("nova pro = %+v: want the example's tier settings on the built-in quota", pro)
	}
	if !haiku.StructuredOutputs || haiku.CacheMinTokens != 4096 || len(haiku.CacheTTLs) != 2 {
		t.Errorf("haiku = %+v: want built-in caching and structured outputs kept", haiku)
	}

	empty, err := bedrocksim.LoadConfig(nil)
	if err != nil || empty.LatencyScale != 1 || len(empty.Models) == 0 {
		t.Errorf("empty config: %v, latency scale %g; want built-ins at real-time latency", err, empty.LatencyScale)
	}

	tests := []struct {
		name string
		yaml string
		want []string // every one must be reported
	}{
		{"unknown key", "modles: {}", []string{"modles"}},
		{"unknown model field", "models: {m: {context_window: 10, max_output: 5}}", []string{"max_output"}},
		{"every problem at once", `
minute: -1s
models:
  m: {context_window: 0, max_output_tokens: 0, output_burndown: 0, faults: {timeout: 0.8, not_ready: 0.8}}
guardrails:
  g: {versions: [], pii: [{type: NAME, action: MASK}]}
`, []string{"minute", "context_window", "max_output_tokens", "output_burndown", "add up to", "versions", "NAME", "MASK"}},
		{"tiers, TTLs and their settings", `
models:
  m:
    context_window: 10
    max_output_tokens: 5
    service_tiers: [flex, turbo, flex]
    cache_ttls: [5m, 10m]
    flex: {latency_factor: -1, quota_share: 1.5}
    priority: {latency_factor: -0.5}
    reserved_tpm: 1000
`, []string{`service_tiers[1]: "turbo" is not one of default, flex, priority, reserved`, `service_tiers[2]: "flex" is listed twice`,
			`cache_ttls[1]: "10m"`, "flex.latency_factor", "flex.quota_share", "priority.latency_factor",
			"reserved_tpm: set, but reserved is not in service_tiers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bedrocksim.LoadConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatal("config accepted, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestBuiltinModelCapabilities pins the built-ins to what Bedrock documents:
// cache minimums and TTLs and structured outputs for the Claude 4.5 models,
// flex and priority only where the launch named the model.
func TestBuiltinModelCapabilities(t *testing.T) {
	t.Parallel()
	models := bedrocksim.DefaultConfig().Models
	tests := []struct {
		id         string
		cacheMin   int
		ttls       []string
		structured bool
		tiers      []string
	}{
		{haiku, 4096, []string{"5m", "1h"}, true, nil},
		{sonnet, 1024, []string{"5m", "1h"}, true, nil},
		{sonnet4, 1024, nil, false, nil},
		{micro, 0, nil, false, nil},
		{"us.amazon.nova-pro-v1:0", 0, nil, false, []string{"flex", "priority"}},
	}
	for _, tt := range tests {
		m, ok := models[tt.id]
		if !ok {
			t.Fatalf("%s is not built in", tt.id)
		}
		if m.CacheMinTokens != tt.cacheMin || !slices.Equal(m.CacheTTLs, tt.ttls) || m.StructuredOutputs != tt.structured ||
			!slices.Equal(m.ServiceTiers, tt.tiers) || m.ReservedTPM != 0 {
			t.Errorf("%s: cache_min_tokens %d, cache_ttls %v, structured_outputs %v, service_tiers %v, reserved_tpm %d; want %d, %v, %v, %v, 0",
				tt.id, m.CacheMinTokens, m.CacheTTLs, m.StructuredOutputs, m.ServiceTiers, m.ReservedTPM,
				tt.cacheMin, tt.ttls, tt.structured, tt.tiers)
		}
	}
}

// FuzzConverseDecoder sends arbitrary bodies: the simulator must answer every
// one with a response the SDK can read, and never panic.
func FuzzConverseDecoder(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"guardContent":{"text":{"text":"a@b.io"}}}]}],"guardrailConfig":{"guardrailIdentifier":"tierq-default","guardrailVersion":"1","trace":"enabled"}}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"text":"x"},{"cachePoint":{"type":"default"}}]}],"inferenceConfig":{"maxTokens":1,"stopSequences":[""]}}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"text":"x"},{"cachePoint":{"type":"default","ttl":"1h"}}]}],"serviceTier":{"type":"flex"}}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"text":"x"}]}],"serviceTier":"flex","inferenceConfig":{"serviceTier":{"type":"flex"}}}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"text":"x"}]}],"outputConfig":{"textFormat":{"type":"json_schema","structure":{"jsonSchema":{"schema":"{\"$ref\":\"#\"}"}}}}}`))
	f.Add([]byte(`{"messages":[{"role":"assistant"}]}`))
	f.Add([]byte(`{"messages":`))
	f.Add([]byte(`null`))
	f.Add([]byte{0xff, 0xfe})
	sim, err := bedrocksim.New(bedrocksim.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/model/us.amazon.nova-micro-v1%3A0/converse", bytes.NewReader(body))
		sim.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			var out map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out["stopReason"] == nil {
				t.Fatalf("200 with body %q", rec.Body.String())
			}
			return
		}
		if !json.Valid(body) && (rec.Code != http.StatusBadRequest || rec.Header().Get("X-Amzn-Errortype") != "ValidationException") {
			t.Fatalf("malformed JSON got %d %s, want 400 ValidationException", rec.Code, rec.Header().Get("X-Amzn-Errortype"))
		}
		if rec.Header().Get("X-Amzn-Errortype") == "" {
			t.Fatalf("error %d without an error type header", rec.Code)
		}
	})
}

// ExampleNew serves the simulator in-process and calls it with the real SDK client.
func ExampleNew() {
	sim, err := bedrocksim.New(bedrocksim.DefaultConfig())
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	client := bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId:  aws.String("us.amazon.nova-micro-v1:0"),
		System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Classify the ticket. Labels: billing, outage, other"}},
		Messages: userText("The invoice shows a billing error on line 3."),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Output.(*types.ConverseOutputMemberMessage).Value.Content[0].(*types.ContentBlockMemberText).Value, out.StopReason)
	// Output: billing end_turn
}

// An injected fault releases the call's token reservation but counts
// against the request quota, as README says.
func TestInjectedFaultCountsTheRequestNotTheTokens(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := bedrocksim.DefaultConfig()
	cfg.Now = clock.Now
	m := cfg.Models[micro]
	m.Faults = bedrocksim.Faults{ServiceUnavailable: 1}
	cfg.Models[micro] = m
	sim, client, _ := start(t, cfg)
	if _, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String(micro), Messages: userText("Summarize: the meeting moved to Friday.")}); err == nil {
		t.Fatal("call succeeded, want the injected 503")
	}
	if w := sim.Stats().Models[micro].Window; w.Requests != 1 || w.Tokens != 0 {
		t.Errorf("window %+v, want 1 request and 0 tokens", w)
	}
}
