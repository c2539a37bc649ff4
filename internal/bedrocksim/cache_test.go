package bedrocksim_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/internal/bedrocksim"
)

const (
	haiku   = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
	sonnet4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
)

// tokens returns text of exactly n simulated tokens.
func tokens(word string, n int) string {
	return strings.Repeat(word[:4], n)
}

func point(ttl types.CacheTTL) *types.CachePointBlock {
	return &types.CachePointBlock{Type: types.CachePointTypeDefault, Ttl: ttl}
}

func sysPoint(ttl types.CacheTTL) types.SystemContentBlock {
	return &types.SystemContentBlockMemberCachePoint{Value: *point(ttl)}
}

func msgPoint(ttl types.CacheTTL) types.ContentBlock {
	return &types.ContentBlockMemberCachePoint{Value: *point(ttl)}
}

// cacheUsage is what a call reports about the prompt cache.
type cacheUsage struct {
	read, write int32
	details     []types.CacheDetail
}

func usageOf(t *testing.T, out *bedrockruntime.ConverseOutput) cacheUsage {
	t.Helper()
	u := out.Usage
	if u.CacheReadInputTokens == nil || u.CacheWriteInputTokens == nil {
		t.Fatalf("usage %+v: cache fields missing on a request with cache points", u)
	}
	if *u.TotalTokens != *u.InputTokens+*u.CacheReadInputTokens+*u.CacheWriteInputTokens+*u.OutputTokens {
		t.Errorf("totalTokens %d != input %d + cache read %d + cache write %d + output %d", *u.TotalTokens,
			*u.InputTokens, *u.CacheReadInputTokens, *u.CacheWriteInputTokens, *u.OutputTokens)
	}
	return cacheUsage{*u.CacheReadInputTokens, *u.CacheWriteInputTokens, u.CacheDetails}
}

func details(pairs ...any) []types.CacheDetail {
	var out []types.CacheDetail
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, types.CacheDetail{Ttl: types.CacheTTL(pairs[i].(string)), InputTokens: aws.Int32(int32(pairs[i+1].(int)))})
	}
	return out
}

func sameDetails(a, b []types.CacheDetail) bool {
	return slices.EqualFunc(a, b, func(x, y types.CacheDetail) bool { return x.Ttl == y.Ttl && *x.InputTokens == *y.InputTokens })
}

func TestPromptCacheLifetime(t *testing.T) {
	t.Parallel()
	// One step of a cache's life: wait, call, and what the call reports.
	type step struct {
		wait  time.Duration
		read  int32
		write int32
	}
	tests := []struct {
		name  string
		ttl   types.CacheTTL
		steps []step
	}{
		{"no ttl is 5m", "", []step{
			{0, 0, 1500},
			{4 * time.Minute, 1500, 0},
			{4 * time.Minute, 1500, 0}, // 8 minutes after the write: the read refreshed it
			{5 * time.Minute, 0, 1500}, // 5 minutes after the last read: expired
		}},
		{"5m", types.CacheTTLFiveMinutes, []step{
			{0, 0, 1500},
			{4*time.Minute + 59*time.Second, 1500, 0},
			{5*time.Minute + time.Second, 0, 1500},
		}},
		{"1h", types.CacheTTLOneHour, []step{
			{0, 0, 1500},
			{59 * time.Minute, 1500, 0},
			{59 * time.Minute, 1500, 0},
			{61 * time.Minute, 0, 1500},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			cfg := bedrocksim.DefaultConfig()
			cfg.Now = clock.Now
			_, client, _ := start(t, cfg)
			in := &bedrockruntime.ConverseInput{
				ModelId:  aws.String(sonnet),
				System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: tokens("policy", 1500)}, sysPoint(tt.ttl)},
				Messages: userText("Summarize the policy."),
			}
			ttl := string(tt.ttl)
			if ttl == "" {
				ttl = "5m"
			}
			for i, s := range tt.steps {
				clock.Add(s.wait)
				out, err := client.Converse(context.Background(), in)
				if err != nil {
					t.Fatalf("step %d: %v", i+1, err)
				}
				u := usageOf(t, out)
				if u.read != s.read || u.write != s.write {
					t.Errorf("step %d (after %s): cache read %d write %d, want %d and %d", i+1, s.wait, u.read, u.write, s.read, s.write)
				}
				var want []types.CacheDetail
				if s.write > 0 {
					want = details(ttl, int(s.write))
				}
				if !sameDetails(u.details, want) {
					t.Errorf("step %d: cacheDetails %+v, want %+v", i+1, u.details, want)
				}
				if *out.Usage.InputTokens != int32(bedrocksim.EstimateTokens("Summarize the policy.")) {
					t.Errorf("step %d: inputTokens %d include cached tokens", i+1, *out.Usage.InputTokens)
				}
			}
		})
	}
}

func TestPromptCacheTTLsMixed(t *testing.T) {
	t.Parallel()
	clock := newClock()
	cfg := bedrocksim.DefaultConfig()
	cfg.Now = clock.Now
	sim, client, _ := start(t, cfg)
	// A 1h point after 1,200 tokens of system prompt, a 5m point after 800
	// more in the first message.
	in := &bedrockruntime.ConverseInput{
		ModelId: aws.String(sonnet),
		System:  []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: tokens("rule", 1200)}, sysPoint(types.CacheTTLOneHour)},
		Messages: []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{
			&types.ContentBlockMemberText{Value: tokens("case", 800)}, msgPoint(types.CacheTTLFiveMinutes),
			&types.ContentBlockMemberText{Value: "Which rule applies?"},
		}}},
	}
	steps := []struct {
		wait    time.Duration
		read    int32
		write   int32
		details []types.CacheDetail
	}{
		{0, 0, 2000, details("1h", 1200, "5m", 800)},     // both written, 1h listed first
		{time.Minute, 2000, 0, nil},                      // the longest prefix is read
		{6 * time.Minute, 1200, 800, details("5m", 800)}, // the 5m entry expired, the 1h one did not
	}
	var settled int
	for i, s := range steps {
		clock.Add(s.wait)
		before := sim.Stats().Models[sonnet].Window.Tokens
		out, err := client.Converse(context.Background(), in)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		u := usageOf(t, out)
		if u.read != s.read || u.write != s.write || !sameDetails(u.details, s.details) {
			t.Errorf("step %d: read %d write %d details %+v; want %d, %d, %+v", i+1, u.read, u.write, u.details, s.read, s.write, s.details)
		}
		// Quota burndown: input + cache writes + output × 5; cache reads are free.
		settled = sim.Stats().Models[sonnet].Window.Tokens - before
		if want := int(*out.Usage.InputTokens) + int(u.write) + 5*int(*out.Usage.OutputTokens); settled != want {
			t.Errorf("step %d: the call settled %d quota tokens, want input + cache write + 5 × output = %d", i+1, settled, want)
		}
	}
}

func TestPromptCacheBelowMinimumIsNotCached(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	tests := []struct {
		name   string
		model  string
		prefix int
	}{
		{"Haiku 4.5 needs 4,096 tokens", haiku, 4000},
		{"Sonnet 4.5 needs 1,024 tokens", sonnet, 1000},
		{"Nova caches nothing here", micro, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := &bedrockruntime.ConverseInput{
				ModelId:  aws.String(tt.model),
				System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: tokens("text", tt.prefix)}, sysPoint("")},
				Messages: userText("Summarize."),
			}
			for i := range 2 {
				out, err := client.Converse(context.Background(), in)
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				if u := usageOf(t, out); u.read != 0 || u.write != 0 || u.details != nil {
					t.Errorf("call %d: read %d write %d details %+v, want nothing cached", i+1, u.read, u.write, u.details)
				}
				if want := int32(tt.prefix + bedrocksim.EstimateTokens("Summarize.")); *out.Usage.InputTokens != want {
					t.Errorf("call %d: inputTokens %d, want all %d", i+1, *out.Usage.InputTokens, want)
				}
			}
		})
	}
	// Just above the minimum, Haiku caches.
	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId:  aws.String(haiku),
		System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: tokens("text", 4096)}, sysPoint("")},
		Messages: userText("Summarize."),
	})
	if err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, out); u.write != 4096 {
		t.Errorf("Haiku at 4,096 tokens wrote %d, want 4096", u.write)
	}
}

func TestCachePointRejections(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	sys := func(blocks ...types.SystemContentBlock) []types.SystemContentBlock {
		return append([]types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Rules."}}, blocks...)
	}
	tests := []struct {
		name   string
		model  string
		system []types.SystemContentBlock
		msg    []types.ContentBlock
		want   []string
	}{
		{"1h on Nova Micro", micro, sys(sysPoint(types.CacheTTLOneHour)), nil, []string{"1h", micro, "supported: 5m"}},
		{"1h on Sonnet 4", sonnet4, sys(sysPoint(types.CacheTTLOneHour)), nil, []string{"1h", sonnet4}},
		{"unknown ttl", sonnet, sys(sysPoint("10m")), nil, []string{`"10m"`, "system.1.cachePoint.ttl", "5m or 1h"}},
		{"unknown type", sonnet, sys(&types.SystemContentBlockMemberCachePoint{Value: types.CachePointBlock{Type: "ephemeral"}}), nil,
			[]string{`"ephemeral"`, "cachePoint.type"}},
		{"5m then 1h across system and messages", sonnet, sys(sysPoint(types.CacheTTLFiveMinutes)), []types.ContentBlock{msgPoint(types.CacheTTLOneHour)},
			[]string{"must not increase", "messages.0.content.1", "system.1"}},
		{"no ttl (5m) then 1h", sonnet, sys(sysPoint("")), []types.ContentBlock{msgPoint(types.CacheTTLOneHour)}, []string{"must not increase"}},
		{"five cache points", sonnet, sys(sysPoint(""), sysPoint(""), sysPoint("")), []types.ContentBlock{msgPoint(""), msgPoint("")},
			[]string{"5 cache points", "at most 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			content := append([]types.ContentBlock{&types.ContentBlockMemberText{Value: "Question."}}, tt.msg...)
			_, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
				ModelId: aws.String(tt.model), System: tt.system,
				Messages: []types.Message{{Role: types.ConversationRoleUser, Content: content}},
			})
			var ve *types.ValidationException
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want ValidationException", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(ve.ErrorMessage(), w) {
					t.Errorf("message %q does not contain %q", ve.ErrorMessage(), w)
				}
			}
		})
	}
	// Non-increasing is fine: 1h, 1h, 5m, 5m.
	_, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String(sonnet), System: sys(sysPoint(types.CacheTTLOneHour), sysPoint(types.CacheTTLOneHour)),
		Messages: []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{
			&types.ContentBlockMemberText{Value: "Question."}, msgPoint(types.CacheTTLFiveMinutes), msgPoint(""),
		}}},
	})
	if err != nil {
		t.Errorf("1h, 1h, 5m, 5m: %v, want accepted", err)
	}
}

// The cache is per model: the same prefix cached on one model is written,
// not read, on another.
func TestPromptCacheIsPerModel(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	for _, model := range []string{sonnet, sonnet4} {
		out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
			ModelId:  aws.String(model),
			System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: tokens("policy", 1500)}, sysPoint("")},
			Messages: userText("Summarize the policy."),
		})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if u := usageOf(t, out); u.read != 0 || u.write != 1500 {
			t.Errorf("%s: cache read %d write %d, want 0 and 1500 (a cache of its own)", model, u.read, u.write)
		}
	}
}
