package pipeline_test

import (
	"strings"
	"testing"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// flexPrices are the standard tier's flex prices in these tests: half the
// default ones, as flex is reported to be.
var flexPrices = tiering.TokenPrices{InputPerMTok: 0.55, OutputPerMTok: 2.75, CacheReadPerMTok: 0.055, CacheWritePerMTok: 0.6875, CacheWrite1hPerMTok: 1.10}

// withFlex makes the standard tier ask for flex, priced.
func withFlex(c *tiering.Config) {
	std := &c.Tiers[1]
	std.ServiceTier = tiering.ServiceTierFlex
	std.Prices.ServiceTiers = map[string]tiering.TokenPrices{tiering.ServiceTierFlex: flexPrices}
}

// A tier that asks for flex sends serviceTier, records the tier that
// served it, and is priced at flex prices; a model that refuses flex is
// called again at default, once, and priced at default.
func TestServiceTiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		modelTakes  []string
		wantServed  string
		wantFallbk  bool
		wantAttempt int
	}{
		{"served at flex", []string{bedrocksim.TierFlex}, tiering.ServiceTierFlex, false, 1},
		{"flex refused, default instead", nil, tiering.ServiceTierDefault, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{
				sim: func(c *bedrocksim.Config) {
					editModel(c, standardModel, func(m *bedrocksim.Model) {
						m.ServiceTiers = tt.modelTakes
					})
				},
				tiers: withFlex,
			})
			id := "flex-" + strings.ReplaceAll(tt.name, " ", "-")
			id = strings.ReplaceAll(id, ",", "")
			e.process(jobBody(t, jobv1.Job{JobID: id, Task: "summarize", TierOverride: "standard",
				Text: "Quarterly review. Revenue grew eight percent; churn fell to two percent."}))
			r := e.result(id)
			if r.Status != jobv1.StatusSucceeded || len(r.Calls) != 1 || r.Attempts != tt.wantAttempt {
				t.Fatalf("status %s, %d calls, %d attempts (error %+v); want succeeded, 1 call, %d attempts", r.Status, len(r.Calls), r.Attempts, r.Error, tt.wantAttempt)
			}
			c := r.Calls[0]
			if c.ServiceTier != tt.wantServed || r.ServiceTier != tt.wantServed || c.RequestedServiceTier != tiering.ServiceTierFlex {
				t.Errorf("served %q (result %q), requested %q; want served %q, requested flex", c.ServiceTier, r.ServiceTier, c.RequestedServiceTier, tt.wantServed)
			}
			if got := strings.Contains(c.Fallback, "service tier refused"); got != tt.wantFallbk {
				t.Errorf("fallback %q, want one recorded: %v", c.Fallback, tt.wantFallbk)
			}
			std, _ := e.cfg.Tiers.Tier("standard")
			prices, _ := std.CallPrices(standardModel, tt.wantServed)
			if !testenv.SameCost(r.Cost, prices.Cost(r.Usage)) {
				t.Errorf("cost %+v, want %+v (%s prices)", r.Cost, prices.Cost(r.Usage), tt.wantServed)
			}
			if got := e.sim.Stats().Models[standardModel]; got.Requests != int64(tt.wantAttempt) {
				t.Errorf("simulator saw %d requests, want %d", got.Requests, tt.wantAttempt)
			}
			lines := e.callLines()
			if len(lines) != 1 || lines[0].ServiceTier != tt.wantServed {
				t.Errorf("call lines %+v, want one with ServiceTier %s", lines, tt.wantServed)
			}
		})
	}
}

// A system prompt past the model's minimum cacheable prefix gets a cache
// point: the first job writes the cache, the next reads it, and each is
// priced by what it did (writes at the TTL's price, reads at the read
// price). A prompt below the minimum gets none and costs input price.
func TestPromptCaching(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Keep every figure, name and date exactly as written. ", 500) // ~26,500 characters
	tests := []struct {
		name      string
		prompt    string
		ttl       string
		wantCache bool
	}{
		{"5 minutes", long, tiering.CacheTTL5m, true},
		{"1 hour", long, tiering.CacheTTL1h, true},
		{"below the minimum", "Summarize the document.", tiering.CacheTTL5m, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{tiers: func(c *tiering.Config) {
				std := &c.Tiers[1]
				std.SystemPrompts = map[string]string{"default": tt.prompt}
				std.PromptCache = tiering.PromptCache{MinTokens: 4096, TTL: tt.ttl}
			}})
			var rs []jobv1.Result
			for _, id := range []string{"cache-a", "cache-b"} {
				e.process(jobBody(t, jobv1.Job{JobID: id, Task: "summarize", TierOverride: "standard", Text: "Revenue grew eight percent in " + id + "."}))
				rs = append(rs, e.result(id))
			}
			first, second := rs[0].Usage, rs[1].Usage
			std, _ := e.cfg.Tiers.Tier("standard")
			for _, r := range rs {
				if !testenv.SameCost(r.Cost, std.Prices.Cost(r.Usage)) {
					t.Errorf("%s: cost %+v, want %+v", r.JobID, r.Cost, std.Prices.Cost(r.Usage))
				}
			}
			if !tt.wantCache {
				if first.CacheWriteTokens+first.CacheReadTokens+second.CacheWriteTokens+second.CacheReadTokens != 0 {
					t.Errorf("usage %+v then %+v, want no caching below the minimum", first, second)
				}
				return
			}
			if first.CacheWriteTokens < 4096 || first.CacheReadTokens != 0 || second.CacheReadTokens != first.CacheWriteTokens || second.CacheWriteTokens != 0 {
				t.Fatalf("usage %+v then %+v, want a write of the prompt then a read of it", first, second)
			}
			if want := map[string]int{tiering.CacheTTL5m: 0, tiering.CacheTTL1h: first.CacheWriteTokens}[tt.ttl]; first.CacheWrite1hTokens != want {
				t.Errorf("1h writes %d, want %d", first.CacheWrite1hTokens, want)
			}
			// Input tokens exclude the cached prefix.
			if second.InputTokens >= first.CacheWriteTokens {
				t.Errorf("second job input %d, want it to exclude the %d cached tokens", second.InputTokens, first.CacheWriteTokens)
			}
			if rs[1].Cost.TotalUSD >= rs[0].Cost.TotalUSD {
				t.Errorf("cost %v then %v, want the cache read cheaper than the write", rs[0].Cost.TotalUSD, rs[1].Cost.TotalUSD)
			}
		})
	}
}
