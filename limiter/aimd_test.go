package limiter

import "testing"

// testAIMD is an aimd at limit and budget with the calls of inFlight
// (reservations) admitted.
func testAIMD(t *testing.T, edit func(*Config), limit, budget int, inFlight ...int) *aimd {
	t.Helper()
	cfg := DefaultConfig()
	cfg.InitialLimit, cfg.InitialTokens = limit, budget
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := newAIMD(&cfg)
	for _, tokens := range inFlight {
		c.admit(tokens)
	}
	return &c
}

func TestAIMDAdmission(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		limit    int
		budget   int
		inFlight []int
		call     int // reservation of the next call
		waiting  int
		open     bool
		fits     bool
		free     int
	}{
		{"empty", 4, 10_000, nil, 1_000, 0, true, true, 4},
		{"larger than the budget, alone", 4, 10_000, nil, 50_000, 0, true, true, 4},
		{"larger than the budget, not alone", 4, 10_000, []int{1}, 50_000, 0, true, false, 3},
		{"fits the budget exactly", 4, 10_000, []int{6_000}, 4_000, 0, true, true, 3},
		{"over the budget by one", 4, 10_000, []int{6_000}, 4_001, 0, true, false, 3},
		{"at the limit", 2, 10_000, []int{1, 1}, 1, 0, false, true, 0},
		{"waiters take free places first", 4, 10_000, []int{1}, 1, 2, true, true, 1},
		{"never below zero", 2, 10_000, []int{1}, 1, 5, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testAIMD(t, nil, tt.limit, tt.budget, tt.inFlight...)
			if got := c.open(); got != tt.open {
				t.Errorf("open = %v, want %v", got, tt.open)
			}
			if got := c.fits(tt.call); got != tt.fits {
				t.Errorf("fits(%d) = %v, want %v", tt.call, got, tt.fits)
			}
			if got := c.free(tt.waiting); got != tt.free {
				t.Errorf("free(%d waiting) = %d, want %d", tt.waiting, got, tt.free)
			}
		})
	}
}

func TestAIMDAdmitAndRelease(t *testing.T) {
	t.Parallel()
	c := testAIMD(t, nil, 4, 10_000, 1_000, 2_000)
	epoch := c.admit(3_000)
	if c.inFlight != 3 || c.tokens != 6_000 || !c.current(epoch) {
		t.Fatalf("after three admissions: %d in flight holding %d tokens, current %v; want 3, 6000, true", c.inFlight, c.tokens, c.current(epoch))
	}
	c.release(2_000)
	if c.inFlight != 2 || c.tokens != 4_000 {
		t.Errorf("after a release: %d in flight holding %d tokens, want 2 and 4000", c.inFlight, c.tokens)
	}
	c.shrink(true, true)
	if c.current(epoch) {
		t.Error("a call admitted before a decrease is still current")
	}
}

func TestAIMDInUse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		limit, budget int
		inFlight      []int
		head          int
		waiting       bool
		count, tokens bool
	}{
		{"idle", 10, 10_000, nil, 0, false, false, false},
		{"below the used fraction", 10, 100_000, []int{1, 1, 1, 1, 1, 1, 1}, 0, false, false, false},
		{"at the used fraction", 10, 100_000, []int{1, 1, 1, 1, 1, 1, 1, 1}, 0, false, true, false},
		{"limit of one", 1, 100_000, []int{1}, 0, false, true, false},
		{"budget at the used fraction", 10, 10_000, []int{8_000}, 0, false, false, true},
		{"budget below it, nothing waits", 10, 10_000, []int{7_000}, 4_000, false, false, false},
		{"budget below it, the head does not fit", 10, 10_000, []int{7_000}, 4_000, true, false, true},
		{"budget below it, the head fits", 10, 10_000, []int{7_000}, 3_000, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testAIMD(t, nil, tt.limit, tt.budget, tt.inFlight...)
			count, tokens := c.inUse(tt.head, tt.waiting)
			if count != tt.count || tokens != tt.tokens {
				t.Errorf("inUse = (%v, %v), want (%v, %v)", count, tokens, tt.count, tt.tokens)
			}
		})
	}
}

func TestAIMDGrow(t *testing.T) {
	t.Parallel()
	ceilings := func(c *Config) { c.MaxLimit, c.MaxTokens, c.TokenIncrease = 8, 20_000, 4_000 }
	tests := []struct {
		name              string
		limit, budget     int
		tokens            int
		count, tokensUsed bool
		wantLimit         float64
		wantBudget        float64
		report            bool
	}{
		{"limit in use: Increase/limit", 4, 10_000, 100, true, false, 4.25, 10_000, false},
		{"budget in use: TokenIncrease × share of the budget", 4, 10_000, 2_500, false, true, 4, 11_000, false},
		{"a call larger than the budget counts as one budget", 4, 8_000, 50_000, false, true, 4, 12_000, true},
		{"both in use", 4, 10_000, 2_500, true, true, 4.25, 11_000, false},
		{"at the ceilings", 8, 20_000, 20_000, true, true, 8, 20_000, false},
		{"nothing in use", 4, 10_000, 100, false, false, 4, 10_000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testAIMD(t, ceilings, tt.limit, tt.budget)
			report := c.grow(tt.tokens, tt.count, tt.tokensUsed)
			if c.limit != tt.wantLimit || c.budget != tt.wantBudget || report != tt.report {
				t.Errorf("grow: limit %v budget %v report %v, want %v, %v, %v", c.limit, c.budget, report, tt.wantLimit, tt.wantBudget, tt.report)
			}
		})
	}
	t.Run("reported once per whole call or TokenIncrease", func(t *testing.T) {
		t.Parallel()
		c := testAIMD(t, func(c *Config) { c.TokenIncrease = 4_000 }, 4, 10_000)
		reports := 0
		grow := func(tokens int, count, tokensUsed bool) {
			if c.grow(tokens, count, tokensUsed) {
				reports++
				c.reported()
			}
		}
		for range 8 { // 4.25, 4.49, 4.71, 4.92, 5.12, ...: crosses 5 once
			grow(0, true, false)
		}
		if got := c.intLimit(); got != 5 || reports != 1 {
			t.Errorf("after 8 successes from 4: limit %d with %d reports, want 5 and 1", got, reports)
		}
		grow(10_000, false, true) // a budget's worth: +4000, reported
		grow(10_000, false, true) // 10000/14000 of one: +2857, not yet
		if c.intBudget() != 16_857 || reports != 2 {
			t.Errorf("budget %d with %d reports, want 16857 and 2 (one for the first TokenIncrease)", c.intBudget(), reports)
		}
	})
}

func TestAIMDShrink(t *testing.T) {
	t.Parallel()
	floors := func(c *Config) { c.MinLimit, c.MinTokens = 2, 5_000 }
	tests := []struct {
		name              string
		limit, budget     int
		count, tokensUsed bool
		wantLimit         int
		wantBudget        int
		changed           bool
	}{
		{"limit in use", 10, 10_000, true, false, 7, 10_000, true},
		{"budget in use", 10, 10_000, false, true, 10, 7_000, true},
		{"neither looked in use: both", 10, 10_000, false, false, 7, 7_000, true},
		{"down to the floors", 2, 6_000, true, true, 2, 5_000, true},
		{"at the floors", 2, 5_000, true, true, 2, 5_000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testAIMD(t, floors, tt.limit, tt.budget)
			epoch := c.epoch
			changed := c.shrink(tt.count, tt.tokensUsed)
			if c.intLimit() != tt.wantLimit || c.intBudget() != tt.wantBudget || changed != tt.changed {
				t.Errorf("shrink: limit %d budget %d changed %v, want %d, %d, %v", c.intLimit(), c.intBudget(), changed, tt.wantLimit, tt.wantBudget, tt.changed)
			}
			if c.epoch != epoch+1 {
				t.Errorf("epoch %d after a decrease from %d, want a new one even at the floors", c.epoch, epoch)
			}
		})
	}
}
