package limiter

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// t0 is when the pacer tests start; time is passed explicitly, so no test
// sleeps.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func testPacer(t *testing.T) *pacer {
	t.Helper()
	cfg := DefaultConfig() // Window 1m, Cut 0.95, Grow 0.01, MinRate 1000
	p := newPacer(&cfg)
	return &p
}

// learned is a pacer that learned rate 3800 at t0 from a window of four
// 1,000-token calls and a fifth that was throttled, with tickets for the
// four.
func learned(t *testing.T) (*pacer, []ticket) {
	t.Helper()
	p := testPacer(t)
	p.note(1_000)
	p.admit(sec(-60), 1_000) // a window of history: nothing is extrapolated
	p.advance(t0)
	var ts []ticket
	for range 5 {
		ts = append(ts, p.admit(t0, 1_000))
	}
	p.unreserve(ts[0])
	if cut, windowCut := p.throttled(t0, ts[0]); !cut || !windowCut || p.intRate() != 3_800 {
		t.Fatalf("first throttle: cut %v windowCut %v rate %d, want a first cut to 3800", cut, windowCut, p.intRate())
	}
	return p, ts[1:]
}

func TestPacerUnlearnedDoesNotPace(t *testing.T) {
	t.Parallel()
	p := testPacer(t)
	for range 8 {
		p.admit(t0, 50_000)
	}
	if !p.fits(1_000_000) || p.full() || !p.fitsAt(1_000_000).IsZero() || p.windowTokens != 400_000 {
		t.Errorf("unlearned pacer with 400000 in the window: fits %v full %v window %d, want no pacing and the window counted", p.fits(1_000_000), p.full(), p.windowTokens)
	}
}

func TestPacerFitsAndFitsAt(t *testing.T) {
	t.Parallel()
	// Rate 3800, with 1000 at t0, 1000 at t0+10s and 2000 at t0+20s.
	p := testPacer(t)
	p.rate = 3_800
	p.admit(t0, 1_000)
	p.admit(sec(10), 1_000)
	p.admit(sec(20), 2_000)
	tests := []struct {
		tokens int
		fits   bool
		at     time.Time
	}{
		{0, false, sec(60)},     // 4000 is already over the rate
		{1_000, false, sec(70)}, // 3000 + 1000 is still over it
		{1_800, false, sec(70)},
		{2_000, false, sec(80)}, // only an empty window holds it with 2000 more
		{50_000, false, sec(80)},
	}
	for _, tt := range tests {
		if got := p.fits(tt.tokens); got != tt.fits {
			t.Errorf("fits(%d) = %v, want %v", tt.tokens, got, tt.fits)
		}
		if got := p.fitsAt(tt.tokens); !got.Equal(tt.at) {
			t.Errorf("fitsAt(%d) = %v, want %v", tt.tokens, got, tt.at)
		}
	}
	p.advance(sec(60))
	if p.windowTokens != 3_000 || !p.fits(800) || p.fits(801) {
		t.Errorf("a window after t0: %d in the window, fits(800) %v, fits(801) %v; want 3000, true, false", p.windowTokens, p.fits(800), p.fits(801))
	}
	p.advance(sec(80))
	if p.windowTokens != 0 || !p.fits(50_000) {
		t.Errorf("with an empty window: %d in it, fits a call larger than the rate %v; want 0 and true (it runs alone)", p.windowTokens, p.fits(50_000))
	}
}

func TestPacerUnreserve(t *testing.T) {
	t.Parallel()
	p := testPacer(t)
	a := p.admit(t0, 1_000)
	b := p.admit(sec(30), 2_000)
	p.advance(sec(60)) // a leaves the window
	p.unreserve(a)
	if p.windowTokens != 2_000 {
		t.Fatalf("unreserving a call that left the window: %d in it, want 2000 (nothing taken twice)", p.windowTokens)
	}
	p.unreserve(b)
	p.unreserve(b)
	if p.windowTokens != 0 {
		t.Fatalf("unreserving a throttled call twice: %d in the window, want 0", p.windowTokens)
	}
	p.advance(sec(90))
	if p.windowTokens != 0 || len(p.log) != 0 {
		t.Errorf("after the throttled call's reservation left: %d in the window, %d logged; want 0 and 0", p.windowTokens, len(p.log))
	}
}

func TestPacerThrottled(t *testing.T) {
	t.Parallel()
	p := testPacer(t)
	var burst []ticket
	for range 10 {
		burst = append(burst, p.admit(t0, 1_000))
	}
	steps := []struct {
		what          string
		at            time.Time
		call          *ticket // nil: a call admitted at at
		cut           bool
		windowCut     bool
		rate          int
		inWindowAfter int
	}{
		// 0.95 × the 9,000 left, extrapolated from the least history
		// assumed (a tenth of a window) to a whole window.
		{"first throttle learns the rate", t0, &burst[0], true, true, 85_500, 9_000},
		{"admitted before the cut: same overshoot", sec(1), &burst[1], false, false, 85_500, 8_000},
		{"admitted after the cut: Cut² × min(rate, window)", sec(2), nil, true, false, 7_220, 8_000},
		{"again: Cut⁴", sec(3), nil, true, false, 5_880, 8_000},
		{"again: still Cut⁴", sec(4), nil, true, false, 4_789, 8_000},
		// Everything has left the window: 0.95 × the one call, at the floor.
		{"a window after the last cut", sec(64), &burst[2], true, true, 1_000, 0},
	}
	for _, s := range steps {
		p.advance(s.at)
		call := s.call
		if call == nil {
			tk := p.admit(s.at, 1_000)
			call = &tk
		}
		p.unreserve(*call)
		cut, windowCut := p.throttled(s.at, *call)
		if cut != s.cut || windowCut != s.windowCut || p.intRate() != s.rate || p.windowTokens != s.inWindowAfter {
			t.Errorf("%s: cut %v windowCut %v rate %d window %d, want %v %v %d %d",
				s.what, cut, windowCut, p.intRate(), p.windowTokens, s.cut, s.windowCut, s.rate, s.inWindowAfter)
		}
	}
}

func TestPacerExtrapolatesShortHistory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		seen time.Duration // since the first admission
		want int
	}{
		{0, 9_500},                // at most tenfold
		{6 * time.Second, 9_500},  // a tenth of the window
		{30 * time.Second, 1_900}, // twofold
		{time.Minute, 950},        // a whole window: as measured
	}
	for _, tt := range tests {
		p := testPacer(t)
		p.cfg.MinRate = 1
		p.admit(t0, 1_000)
		at := t0.Add(tt.seen)
		p.advance(at.Add(-time.Nanosecond)) // the first call is still in the window
		tk := p.admit(at, 1_000)
		p.unreserve(tk)
		p.throttled(at, tk)
		if got := p.intRate(); got != tt.want {
			t.Errorf("first throttle %v after the first call: rate %d, want %d", tt.seen, got, tt.want)
		}
	}
}

func TestPacerGrowsOnlyAfterHoldingCallsBack(t *testing.T) {
	t.Parallel()
	p, _ := learned(t) // rate 3800 at t0, average call 1000
	steps := []struct {
		what string
		at   time.Time
		hold bool
		grew bool
		rate int
	}{
		{"a window that held nothing back", sec(60), false, false, 3_800},
		{"held back during the next", sec(70), true, false, 3_800},
		{"its end: one average call", sec(120), false, true, 4_800},
		{"held back again", sec(130), true, false, 4_800},
		{"a second window in a row: doubled", sec(180), false, true, 6_800},
		// After the period's end, before it rolls: counts for the next one.
		{"held back after the end", sec(241), true, false, 6_800},
		{"rolled: nothing held back in the old period", sec(242), false, false, 6_800},
		{"the next period's end", sec(302), false, true, 10_800},
	}
	for _, s := range steps {
		if s.hold {
			p.hold(s.at)
			continue
		}
		if grew := p.advance(s.at); grew != s.grew || p.intRate() != s.rate {
			t.Errorf("%s: grew %v rate %d, want %v and %d", s.what, grew, p.intRate(), s.grew, s.rate)
		}
	}
	// A cut ends the streak and forgets what was held back.
	p.hold(sec(310))
	tk := p.admit(sec(310), 1_000)
	p.unreserve(tk)
	p.throttled(sec(310), tk)
	cut := p.intRate()
	if grew := p.advance(sec(370)); grew || p.intRate() != cut {
		t.Errorf("a window after a cut: grew %v rate %d, want no growth from %d", grew, p.intRate(), cut)
	}
	p.hold(sec(380))
	p.advance(sec(430))
	if got, want := p.intRate(), cut+1_000; got != want {
		t.Errorf("first growth after a cut: rate %d, want %d (one call, not doubled)", got, want)
	}
}

func TestPacerGrowthIsAtLeastGrowOfTheRate(t *testing.T) {
	t.Parallel()
	p := testPacer(t)
	p.note(1_000)
	p.rate, p.growFrom = 200_000, t0
	p.hold(t0)
	p.advance(sec(60))
	if got := p.intRate(); got != 202_000 {
		t.Errorf("rate %d, want 202000 (1%% is more than one call)", got)
	}
}

// clone is a deep copy of p.
func (p *pacer) clone() pacer {
	c := *p
	c.log = slices.Clone(p.log)
	return c
}

func TestPacerAtChangesNothing(t *testing.T) {
	t.Parallel()
	p, held := learned(t)
	p.hold(sec(30))
	p.unreserve(held[0])
	for _, now := range []time.Time{t0, sec(30), sec(59), sec(60), sec(61), sec(600)} {
		before := p.clone()
		got := p.at(now)
		if !reflect.DeepEqual(*p, before) {
			t.Fatalf("at(%v) changed the pacer:\n got %+v\nwant %+v", now.Sub(t0), *p, before)
		}
		want := p.clone()
		want.advance(now)
		if got.rate != want.rate || got.windowTokens != want.windowTokens || !slices.Equal(got.log, want.log) ||
			got.gone != want.gone || !got.growFrom.Equal(want.growFrom) || got.held != want.held || got.streak != want.streak {
			t.Errorf("at(%v) = %+v, want it as advance leaves it, %+v", now.Sub(t0), got, want)
		}
	}
}

func TestPacerRoom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		rate     float64
		inWindow int
		waiting  int
		want     int
	}{
		{"empty window", 3_800, 0, 0, 3},
		{"some room", 3_800, 1_000, 0, 2},
		{"waiters take it first", 3_800, 1_000, 2, 0},
		{"full", 3_800, 4_000, 0, 0},
		{"overfilled by waiters", 3_800, 4_000, 3, -3},
		{"an empty window holds at least one", 500, 0, 0, 1},
	}
	for _, tt := range tests {
		p := testPacer(t)
		p.note(1_000)
		p.rate = tt.rate
		if tt.inWindow > 0 {
			p.admit(t0, tt.inWindow)
		}
		if got := p.room(tt.waiting); got != tt.want {
			t.Errorf("%s: room(%d) = %d, want %d", tt.name, tt.waiting, got, tt.want)
		}
	}
}

func TestPacerMeanTokens(t *testing.T) {
	t.Parallel()
	p := testPacer(t)
	if got := p.next(); got != 1 {
		t.Errorf("next before any call = %d, want 1", got)
	}
	for _, s := range []struct{ note, next int }{{1_000, 1_000}, {17_000, 2_000}, {0, 1_875}} {
		p.note(s.note)
		if got := p.next(); got != s.next {
			t.Errorf("after a call of %d: next = %d, want %d (1/16 of the way)", s.note, got, s.next)
		}
	}
}
