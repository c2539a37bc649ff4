package limiter_test

import (
	"context"
	"fmt"

	"github.com/tierq/tierq/limiter"
)

func ExampleNewAdaptive() {
	const model = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
	lim, err := limiter.NewAdaptive(limiter.Config{
		InitialLimit: 2,
		Models:       []string{model},
		OnChange: func(model string, old, new limiter.State, reason string) {
			fmt.Printf("%s: limit %d -> %d, budget %d -> %d, rate %d -> %d (%s)\n", model,
				old.Limit, new.Limit, old.TokenBudget, new.TokenBudget, old.Rate, new.Rate, reason)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("available before any call:", lim.Available())

	// Reserve the estimated input plus maxTokens, as Bedrock does.
	permit, err := lim.Acquire(context.Background(), model, 1_200+4_096)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The call was throttled: say so, then back off before acquiring again.
	permit.Release(limiter.Dropped)
	fmt.Println("backoff suggested:", lim.Backoff(model) > 0)
	// Output:
	// available before any call: 2
	// us.anthropic.claude-haiku-4-5-20251001-v1:0: limit 2 -> 2, budget 100000 -> 100000, rate 0 -> 50312 (rate cut)
	// us.anthropic.claude-haiku-4-5-20251001-v1:0: limit 2 -> 1, budget 100000 -> 70000, rate 50312 -> 50312 (dropped)
	// backoff suggested: true
}
